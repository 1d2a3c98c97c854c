"""Engines that run a batch's :class:`~sparsevid.batch.jobs.ClipSpec` jobs with :func:`run_clip`:

* :func:`run_ray` -- one Ray task per clip (GPU-aware scheduling, ``max_retries`` on worker loss;
  a retried task resumes the clip from its checkpoint, because :func:`run_clip` resumes a
  half-finished run folder). On one machine ``ray.init()`` starts a local cluster; with an
  address it joins an existing one (``auto`` or ``ray://HOST:PORT``).
* :func:`run_local` -- the same :func:`run_clip` in a loop in this process (no Ray needed).

Both call ``on_row(row)`` as each clip ends and keep a progress line over all clips (done,
running, failed, estimated time left) through :func:`sparsevid.log.progress`.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

from sparsevid import log
from sparsevid.batch.jobs import DONE, FAILED, KEPT, SKIPPED, ClipSpec, failed_row, run_clip
from sparsevid.errors import SparsevidError

Row = dict[str, Any]
INSTALL_HINT = "pip install -e '.[batch]' (or pip install 'ray[default]>=2.40'), or pass --engine local"


def ray_available() -> bool:
    """Whether Ray can be imported here."""
    return importlib.util.find_spec("ray") is not None


class BatchProgress:
    """One progress line over the clips that run: ``clips 3/8 2 done, 2 running, 1 failed ...``
    with rich's elapsed and estimated remaining time."""

    def __init__(self, total: int, skipped: int = 0) -> None:
        self.total, self.skipped = total, skipped
        self.done = self.failed = self.running = 0
        self._bar = log.progress()
        self._task = None

    def __enter__(self) -> "BatchProgress":
        self._bar.__enter__()
        self._task = self._bar.add_task("clips", total=self.total, status=self._status())
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def _status(self) -> str:
        s = f"{self.done} done, {self.running} running, {self.failed} failed"
        return s + (f" ({self.skipped} already finished)" if self.skipped else "")

    def set_running(self, running: int) -> None:
        if running != self.running:
            self.running = running
            self._bar.update(self._task, status=self._status())

    def finished(self, row: Row, running: int) -> None:
        from sparsevid.batch.summary import elsewhere

        if elsewhere(row):  # a second batch on this OUTROOT runs it: not a failure of the clip
            self.done += 1
            log.info(f"clip {row['clip']}: another sparsevid process is running it; its row is that process's")
        elif row["status"] == FAILED:
            self.failed += 1
            log.warn(f"clip {row['clip']} failed: {row['error']}")
        elif row["status"] == KEPT:  # finished with other settings since the batch looked: left as it is
            self.done += 1
            log.warn(f"[{row['clip']}] {row['error']}")
        else:
            self.done += 1
        self.running = running
        self._bar.update(self._task, completed=self.done + self.failed, status=self._status())


def run_local(specs: list[ClipSpec], on_row: Callable[[Row], None], progress: BatchProgress) -> list[Row]:
    """Run the clips one after another in this process."""
    rows = []
    for i, spec in enumerate(specs):
        progress.set_running(1)
        row = run_clip(spec)
        rows.append(row)
        on_row(row)
        progress.finished(row, running=1 if i + 1 < len(specs) else 0)
    return rows


def _ray_error(e: BaseException) -> str:
    """One line for an error a Ray task ended with (its worker died more often than retried, ...)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    name = type(e).__name__
    if "WorkerCrashed" in name or "NodeDied" in name or "died" in first.lower():
        return (f"the Ray worker running this clip died and the retries ran out ({name}: {first[:200]}) -> "
                "rerun the same command to resume it from its last checkpoint")
    return f"{name}: {first[:300]}"


def _capacity(ray, cpus: float, gpus: float) -> int | None:
    """How many clips the cluster runs at once (None: not bounded by CPUs or GPUs)."""
    res = ray.cluster_resources()
    caps = []
    if cpus > 0:
        caps.append(int(res.get("CPU", 0) // cpus))
    if gpus > 0:
        caps.append(int(res.get("GPU", 0) // gpus))
    return max(0, min(caps)) if caps else None


#: seconds to wait for a TCP connection to the head given with ``--address`` before calling it unreachable
CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """A one-line error when ``HOST:PORT`` (or ``ray://HOST:PORT``) takes no TCP connection within
    :data:`CONNECT_TIMEOUT_S`: ``ray.init`` itself retries an unreachable head for many minutes. ``auto`` (the
    cluster started on this machine) is left to Ray, which says at once when there is none."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise SparsevidError(f"cannot reach the Ray head at {address} ({reason})",
                             fix="start it with `ray start --head` and pass the address it prints, or leave "
                                 "--address out for a local cluster") from None


def init_ray(address: str | None) -> bool:
    """Connect to Ray: an already started session is used as it is; ``address`` joins a cluster
    (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``); None starts a local one. Returns whether
    this call started the session (the caller then shuts it down).

    Each clip's lines reach the console as they are: Ray's de-duplication of similar lines (which ignores digits,
    so ``[clip03]`` and ``[clip02]`` look alike) is off unless ``RAY_DEDUP_LOGS`` says otherwise; it is read when
    Ray is first imported."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if address:
        _check_reachable(address)
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": True}
    if address:
        kwargs["address"] = address
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    ours = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(**kwargs)
        if main and ours is not None:  # ray.init puts its own SIGTERM handler (sys.exit) in place of ours, which
            signal.signal(signal.SIGTERM, ours)  # interrupts the batch like Ctrl-C: its summary, one line, 143
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        fix = ("pip install 'ray[client]' for a ray:// address, or pass the head's HOST:PORT (its GCS port, 6379 by "
               "default) instead" if "pip package" in first and "client" in first.lower() else
               "start the head with `ray start --head` and pass its address, or leave --address out for a local "
               "cluster")
        raise SparsevidError(f"cannot connect to Ray{f' at {address}' if address else ''}: {first}", fix=fix) from None
    return True


def check_capacity(ray, cpus: float, gpus: float, address: str | None) -> int | None:
    """:func:`_capacity`, refused in one line when the cluster cannot run a single clip (``--gpus-per-clip 1`` on a
    machine without a GPU): Ray would wait for such resources for ever."""
    cap = _capacity(ray, cpus, gpus)
    if cap == 0:
        res = ray.cluster_resources()
        where = f"the Ray cluster at {address}" if address else "this machine's local Ray cluster"
        raise SparsevidError(f"a clip asks for {cpus:g} CPUs and {gpus:g} GPUs, and {where} has "
                             f"{res.get('CPU', 0):g} CPUs and {res.get('GPU', 0):g} GPUs: no clip could ever start",
                             fix="lower --cpus-per-clip / --gpus-per-clip, or add nodes with the resources to the "
                                 "cluster and pass its --address")
    return cap


def run_ray(specs: list[ClipSpec], on_row: Callable[[Row], None], progress: BatchProgress, *,
            address: str | None = None, gpus_per_clip: float = 0, cpus_per_clip: float = 1,
            max_retries: int = 3) -> list[Row]:
    """Run the clips as Ray tasks, one per clip (``num_gpus=gpus_per_clip``,
    ``num_cpus=cpus_per_clip``, ``max_retries`` on worker loss), and collect their rows as they end."""
    import ray

    started = init_ray(address)
    try:
        cap = check_capacity(ray, cpus_per_clip, gpus_per_clip, address)
        task = ray.remote(run_clip).options(num_gpus=gpus_per_clip, num_cpus=cpus_per_clip,
                                            max_retries=max_retries, retry_exceptions=False,
                                            name="sparsevid-clip")
        pending = {task.remote(spec): spec for spec in specs}
        rows = []
        while pending:
            progress.set_running(len(pending) if cap is None else min(cap, len(pending)))
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as e:  # the task could not run or its worker died too often
                    row = failed_row(spec, _ray_error(e))
                rows.append(row)
                on_row(row)
                progress.finished(row, running=len(pending) if cap is None else min(cap, len(pending)))
        return rows
    finally:
        if started:
            ray.shutdown()


__all__ = ["BatchProgress", "INSTALL_HINT", "DONE", "FAILED", "KEPT", "SKIPPED", "init_ray", "ray_available",
           "run_local", "run_ray"]
