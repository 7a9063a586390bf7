"""Reading the machine readable zone (MRZ) of passports, ID cards and visas (ICAO Doc 9303) from photos and scans.

A library, not bank code: it imports nothing of bankq. `read_mrz(image) -> Reading` runs the stages (`prepare`,
`bands`, `tesseract` and `rapid`, `text` and `lookalikes`, `icao`), each testable and replaceable alone; see
`core.mrz.reader` for what makes a reading valid.
"""

from core.mrz.icao import Mrz, MrzError, check_digit, parse
from core.mrz.reader import MAX_ATTEMPTS, TIME_BUDGET, Reading, read_mrz

__all__ = ["MAX_ATTEMPTS", "TIME_BUDGET", "Mrz", "MrzError", "Reading", "check_digit", "parse", "read_mrz"]
