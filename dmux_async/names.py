"""Container names: checking, generating, and resolving what the user typed."""

import re
import secrets
from collections.abc import Callable, Sequence

from dmux_async.errors import UserError
from dmux_async.model import Container

# Docker's own rule for container names.
_VALID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_MAX_LEN = 64

_ADJECTIVES = (
    "amber", "brave", "calm", "clever", "crisp", "dusty", "eager", "fuzzy", "gentle",
    "happy", "jolly", "keen", "lucky", "merry", "nimble", "proud", "quiet", "rapid",
    "shy", "snowy", "steady", "swift", "tidy", "vivid", "wise", "zesty",
)
_NOUNS = (
    "badger", "beaver", "bison", "crane", "falcon", "ferret", "gecko", "heron", "ibis",
    "koala", "lemur", "lynx", "marten", "newt", "otter", "panda", "puffin", "quokka",
    "raven", "seal", "stoat", "tapir", "walrus", "wombat", "yak", "zebra",
)


def check_name(name: str) -> str:
    """Return ``name`` if Docker accepts it as a container name, else explain why not."""
    if len(name) > _MAX_LEN or not _VALID.fullmatch(name):
        raise UserError(
            f"invalid container name {name!r}: use letters, digits, '_', '.' and '-', "
            f"starting with a letter or digit, at most {_MAX_LEN} characters"
        )

    return name


def generate_name(taken: set[str], randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A readable name such as ``calm-otter`` that no container has yet."""
    for attempt in range(100):
        adjective = _ADJECTIVES[randbelow(len(_ADJECTIVES))]
        noun = _NOUNS[randbelow(len(_NOUNS))]
        name = f"{adjective}-{noun}" if attempt < 20 else f"{adjective}-{noun}-{attempt}"

        if name not in taken:
            return name

    raise UserError("could not find a free container name; pass --name")


def resolve(query: str, containers: Sequence[Container]) -> Container:
    """Find a container by exact name, else by unique id prefix."""
    if not query.strip():
        raise UserError(f"no container can be named {query!r}: give a NAME or id prefix "
                        "(`dmux ls` lists them), or leave it out")

    for container in containers:
        if container.name == query:
            return container

    matches = [c for c in containers if c.id.startswith(query.lower())]

    if len(matches) == 1:
        return matches[0]

    if matches:
        listed = ", ".join(sorted(c.name for c in matches))
        raise UserError(f"id prefix {query!r} is ambiguous: it matches {listed}")

    raise UserError(f"no dmux container is named {query!r} or has an id starting with it "
                    "(`dmux ls` lists them)")


def pick_only(candidates: Sequence[Container], what: str) -> Container:
    """With no name given: the only candidate, else an error that lists them."""
    if len(candidates) == 1:
        return candidates[0]

    if not candidates:
        raise UserError(f"no container to {what} here; pass a NAME (`dmux ls` lists them)")

    listed = ", ".join(sorted(c.name for c in candidates))
    raise UserError(f"which container to {what}? pass a NAME: {listed}")
