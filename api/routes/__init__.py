"""HTTP routes, one blueprint per resource. Each handler turns a request into one core call."""
