"""Request validation driven by the AWS service models (botocore's), shared by every service Lamina serves.

AWS checks a request in passes, and so does Lamina, so that a bad request fails the same way:
1. deserialisation: a member of the wrong JSON type makes the request unreadable (InvalidRequestContentException);
2. the service model's constraints (required, length, range, pattern, enum), all reported together in one
   ValidationException, in the model's member order (`constraints.py`; the text itself is built in one place,
   `lamina.errors.violation` / `detected`, which the hand-written rules use too);
3. the service's own rules (cross-field rules, runtime availability, reserved variables...), hand-written beside
   the service that owns them, the first failure wins.

Why here and not in each service: the constraints are data botocore already holds for every AWS service, so one
pass compiled from the model (once per operation, at start-up) serves Lambda today and CloudWatch Logs, IAM and
CloudWatch later; each service only supplies a small override table where its server differs from the published
model. `paging.py` is the one Marker/MaxItems implementation list operations share.
"""
