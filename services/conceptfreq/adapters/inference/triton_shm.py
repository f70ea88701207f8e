"""Image batches to Triton through shared memory instead of the gRPC message, when the client and
the server share a host (`system`) or a GPU (`cuda`): `triton://host:8001?shared_memory=system`.

A pool of input regions, one per request that may be on the wire at once; each request takes a
region, writes its batch there and names the region in the request. Outputs stay on the wire (an
embedding is 2 KB; a 224 px uint8 image is 150 KB). The server forgets registrations when it
restarts: `register` runs on every new channel (triton_backend.TritonBackend._connect), and a
request naming a region the server does not know is retried on a fresh channel.

`cuda` regions live on the client's GPU (tritonclient.utils.cuda_shared_memory, CUDA IPC): the
server must run on the same GPU. Nothing here needs a GPU unless `cuda` is asked for.
"""

from __future__ import annotations

import os
import queue
import uuid

import numpy as np

from conceptfreq.errors import UserError

SHARED_MEMORY = ("none", "system", "cuda")
# What Triton says when a request names a region it does not have (after a restart).
UNKNOWN_REGION = ("unable to find shared memory region", "unable to find system shared memory region",
                  "unable to find cuda shared memory region")


class InputRegions:
    def __init__(self, kind: str, byte_size: int, count: int, device_id: int = 0):
        if kind not in SHARED_MEMORY or kind == "none":
            raise UserError(f"unknown shared memory {kind!r}: choose one of {', '.join(SHARED_MEMORY)}")
        self.kind, self.byte_size, self.device_id = kind, int(byte_size), int(device_id)
        prefix = f"conceptfreq-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.handles: dict[str, object] = {}
        self._free: queue.Queue = queue.Queue()
        for i in range(max(1, int(count))):
            name = f"{prefix}-{i}"
            self.handles[name] = self._create(name)
            self._free.put(name)

    def _create(self, name: str):
        if self.kind == "system":
            import tritonclient.utils.shared_memory as shm

            return shm.create_shared_memory_region(name, f"/{name}", self.byte_size)
        import tritonclient.utils.cuda_shared_memory as cudashm

        return cudashm.create_shared_memory_region(name, self.byte_size, self.device_id)

    def register(self, client) -> None:
        for name, handle in self.handles.items():
            self._unregister(client, name)  # a registration left from an earlier channel
            if self.kind == "system":
                client.register_system_shared_memory(name, f"/{name}", self.byte_size)
            else:
                import tritonclient.utils.cuda_shared_memory as cudashm

                client.register_cuda_shared_memory(name, cudashm.get_raw_handle(handle), self.device_id, self.byte_size)

    def _unregister(self, client, name: str) -> None:
        try:
            if self.kind == "system":
                client.unregister_system_shared_memory(name)
            else:
                client.unregister_cuda_shared_memory(name)
        except Exception:  # noqa: BLE001 - not registered, or the server is gone: nothing to undo
            pass

    def acquire(self) -> str:
        return self._free.get()

    def release(self, name: str) -> None:
        self._free.put(name)

    def write(self, name: str, array: np.ndarray) -> int:
        if array.nbytes > self.byte_size:
            raise ValueError(f"{array.nbytes} bytes do not fit a {self.byte_size}-byte region")
        if self.kind == "system":
            import tritonclient.utils.shared_memory as shm

            shm.set_shared_memory_region(self.handles[name], [np.ascontiguousarray(array)])
        else:
            import tritonclient.utils.cuda_shared_memory as cudashm

            cudashm.set_shared_memory_region(self.handles[name], [np.ascontiguousarray(array)])
        return int(array.nbytes)

    def close(self, client) -> None:
        for name, handle in self.handles.items():
            if client is not None:
                self._unregister(client, name)
            try:
                if self.kind == "system":
                    import tritonclient.utils.shared_memory as shm

                    shm.destroy_shared_memory_region(handle)
                else:
                    import tritonclient.utils.cuda_shared_memory as cudashm

                    cudashm.destroy_shared_memory_region(handle)
            except Exception:  # noqa: BLE001 - closing must not fail over an already-gone region
                pass
        self.handles.clear()
