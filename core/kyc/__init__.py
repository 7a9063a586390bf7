"""Know your customer: identity documents read by OCR, checked, matched and reviewed."""
