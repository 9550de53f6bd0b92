"""The dialects' strict readers, for the gateway's own documents and headers.

The gateway reads its admin API, playground and config values with the same strict
rules the dialects apply to payments: numbers of ASCII digits only, exact amounts,
JSON without duplicate keys or NaN and with bounded nesting, hardened XML. This module
is what `gateway` may use of the dialects' private mechanics (`_json`, `_xml`,
`_values`); they stay free to change behind it.
"""

from __future__ import annotations

from ._json import DEPTH as JSON_DEPTH
from ._json import dumps as json_dumps
from ._json import loads as json_loads
from ._values import ValueProblem, ascii_number, parse_amount, parse_date, parse_integer
from ._xml import LIMITS as XML_LIMITS
from ._xml import Limits as XmlLimits

__all__ = [
    "JSON_DEPTH",
    "XML_LIMITS",
    "ValueProblem",
    "XmlLimits",
    "ascii_number",
    "json_dumps",
    "json_loads",
    "parse_amount",
    "parse_date",
    "parse_integer",
]
