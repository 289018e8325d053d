"""How a pipeline step says it cannot go on."""


class PipelineError(Exception):
    """A failure a person must act on; its message becomes the row's failure reason."""


class PipelineBusy(Exception):
    """Another worker holds this row's pipeline (e.g. a redelivered copy of a task still running).

    The task retries later instead of returning: if that other worker dies, the work still continues.
    """
