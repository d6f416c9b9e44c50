"""The front door: one port, several AWS services. `dispatch.py` picks the service app of each request (by Host, SigV4
signing name, X-Amz-Target, Action), `context.py` is the request context every handler gets, `protocols.py` the
error wire formats (rest-json, json 1.0/1.1, query/XML), `unserved.py` the apps of services not served yet."""
