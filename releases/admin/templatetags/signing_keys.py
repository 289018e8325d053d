from django import template

from releases.adapters.signing_keys import PublishedKey, published_keys

register = template.Library()


@register.simple_tag
def public_signing_keys() -> list[PublishedKey]:
    """The keys releases are verified with (the signing key first), for the admin's front page."""
    return published_keys()
