"""The blueprint every route module uses: flask-smorest's, with a JSON parser that refuses deep nesting."""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


class BankqParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return core.parse_json(req.get_data(cache=True))
        except RecursionError:
            # Nested deeper than Python's recursion limit: malformed input (400 malformed_json), not a crash.
            error = json.JSONDecodeError("The body is nested too deeply.", "", 0)
        return self._handle_invalid_json_error(error, req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = BankqParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """As flask-smorest's, with a schema class made into one instance here: webargs would otherwise build a
        new instance of it (deep-copying every field) on every request, 3% of an accepted transfer's CPU. Loading
        with a schema keeps no state on it, so requests in several threads share the instance."""
        if isinstance(schema, type) and issubclass(schema, ma.Schema):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
