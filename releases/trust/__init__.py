"""Deploy-time trust: what a deploy may run, and withdrawing a release that turned out bad.

Is a reference one of ours, published, signed and not withdrawn? Answered from the database alone,
never by asking the registry: ``references`` (parsing, docker's grammar), ``records`` (what we
hold about a set of references, in a constant number of queries), ``decisions`` (pure functions:
verify's verdict, admission's judgement), ``admission`` (the AdmissionReview protocol: parse the
request into a typed value, render the answer), ``verify`` and ``reviews`` (the use cases the
entry points call: the verify API and command, the admission webhooks), ``webhook_config`` (the
Validating/MutatingWebhookConfiguration a cluster applies). ``withdrawal``: withdrawing and
restoring a release.
"""
