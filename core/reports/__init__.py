"""Account statements: requested as jobs, rendered by a worker to a PDF or CSV file, downloaded by the owner."""
