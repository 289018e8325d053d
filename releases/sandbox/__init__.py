"""Local stand-ins for the real services: a disposable docker-registry process and a tiny multi-arch
base image. Used by ``bin/run``'s sample release, the tests and the benchmarks; never by the
service itself."""
