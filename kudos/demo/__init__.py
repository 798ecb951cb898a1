"""`kudos demo`: a generated app population replayed through the real handlers on a local DynamoDB.

``population`` builds the traffic (a pure, seeded list of timestamped HTTP requests, reusable by
benchmarks and tests); ``run`` replays it and prints what the API then reports.
"""
