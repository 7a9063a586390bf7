"""The beat schedule: which tick runs when. Nothing else lives here."""
