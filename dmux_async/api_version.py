"""Which Engine API version dmux speaks: v1.41, or the oldest one a newer engine still takes.

Docker 20.10 and Podman 4 speak at most 1.41; Docker 29 refuses anything older than 1.44.
Naming 1.41 saves asking each engine first; an engine that refuses it as too old is asked
once for its oldest version, which is then used for the rest of this process (a watcher
runs many commands).
"""

from typing import Any

import aiodocker

API_VERSION = "v1.41"
_TOO_OLD = "too old"
_spoken: dict[str, str] = {}  # engine URL -> the version it took


def version_for(url: str) -> str:
    """The version to name towards this engine: what it took before, else 1.41."""
    return _spoken.get(url, API_VERSION)


class NegotiatingDocker(aiodocker.Docker):
    """aiodocker that moves up to the engine's oldest API version when it refuses 1.41."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url=url, api_version=version_for(url), **kwargs)
        self._url = url

    async def _do_query(self, path: Any, method: str, **kwargs: Any) -> Any:
        try:
            return await super()._do_query(path, method, **kwargs)
        except aiodocker.DockerError as exc:
            if exc.status != 400 or _TOO_OLD not in str(exc.message):
                raise

            await self._move_up()
            return await super()._do_query(path, method, **kwargs)

    async def _move_up(self) -> None:
        """Ask the engine (an unversioned call) for the oldest version it takes."""
        found = await self._query_json("version", versioned_api=False)
        oldest = str(found.get("MinAPIVersion") or found.get("ApiVersion") or "")

        if not oldest or f"v{oldest}" == self.api_version:
            raise aiodocker.DockerError(400, f"the engine takes no API version dmux knows: "
                                             f"{found.get('MinAPIVersion')!r}")

        self.api_version = _spoken[self._url] = f"v{oldest}"
