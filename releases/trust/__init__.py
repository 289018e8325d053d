"""Deploy-time trust: what a deploy may run, and withdrawing a release that turned out bad."""
