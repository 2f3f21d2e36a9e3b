"""The builder: each Dockerfile step a container, its diff a layer. Like Docker's legacy builder.

::

    result = build("app/", BuildOptions(tags=["app:1"]), on_event=print)   a directory context
    result = build(tar_stream, BuildOptions(dockerfile="Dockerfile"))       a tar context (the API)
    result.image_id                                                          sha256:... of the image

For every instruction of the stages the target needs, in order:

1. **Probe the cache** (:mod:`.cache`): the parent image plus the config the step would
   run with (``#(nop) ENV A=1``, the RUN command, ``COPY file:<checksum> in /dst``).
   A hit is that earlier image: `` ---> Using cache``.
2. **Else run the step**. ENV, CMD, LABEL ... only change the config. RUN, COPY, ADD
   and WORKDIR get a container: an overlay snapshot of the parent's layers
   (:class:`minidocker.storage.Snapshot`); RUN executes the command in it through the
   runtime (:func:`minidocker.runtime.run`, namespaces and a cgroup as for ``run``),
   COPY writes the files into it; then its upper directory, the step's diff with its
   whiteouts, becomes a layer (what ``docker commit`` does). An empty diff adds no layer.
3. **Commit** an image: the parent's config changed by the step, one more history entry
   (``/bin/sh -c #(nop)  ENV A=1``, ``empty_layer`` when no layer was added), the step's
   ``container_config`` (what the cache compares), the parent's ID in its record.

A failing step raises (:class:`BuildError` for a RUN, with its exit code and last lines
of output) after removing its container: no mount, cgroup or half image is left, and
no name is tagged. The events are dicts shaped like the Engine API's ``/build`` stream.
See: https://docs.docker.com/reference/dockerfile/, moby/moby builder/dockerfile/ (dispatchers.go,
internals.go, copy.go).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path

from minidocker.build.cache import BuildCache, cache_key, dir_hash, file_hash, source_hash
from minidocker.build.context import BuildContext
from minidocker.build.instructions import Instruction, Stage, go_quote, plan
from minidocker.build.parser import DockerfileError, parse
from minidocker.build.shell import ExpansionError, env_map, process_word
from minidocker.errors import InvalidArgument, MinidockerError, NotFound
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, BinaryIO

    from minidocker.image import Image, ImageStore
    from minidocker.paths import StateRoots

__all__ = ["COMMIT_CHANGES", "BuildError", "BuildOptions", "BuildResult", "apply_changes", "build"]

DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
              "no_proxy", "ALL_PROXY", "all_proxy")
_METADATA = ("ENV", "LABEL", "EXPOSE", "USER", "VOLUME", "STOPSIGNAL", "CMD", "ENTRYPOINT", "SHELL",
             "MAINTAINER", "ONBUILD", "HEALTHCHECK", "ARG")
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class BuildError(MinidockerError):
    """A RUN step that failed: Docker's "The command '...' returned a non-zero code: N".

    Attributes:
        exit_code: the command's exit code (also the CLI's, as docker build's).
        output: the last lines the step printed.
    """

    def __init__(self, message: str, exit_code: int = 1, output: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code
        self.output = output


class BuildOptions(Record):
    """What ``docker build`` takes besides the context (a plain class: dataclasses cost 7 ms).

    Attributes:
        dockerfile: its path in the context (``-f``), default ``Dockerfile``.
        dockerfile_text: the Dockerfile itself (``-f -``), instead of a file of the context.
        network: ``none``, ``host`` or ``bridge`` for RUN (bridge needs ``attach_network``).
        find_image: FROM's image lookup, ``(reference, pull, platform) -> Image`` (the engine passes
            one that pulls); default: the store.
        attach_network: for bridge: ``(container_id, spec, directory) -> (before_start, cleanup)``.
        timings: print each step's time (``--progress plain``).
    """

    FIELDS = ("dockerfile", "dockerfile_text", "tags", "build_args", "target", "no_cache", "pull", "network",
              "labels", "quiet", "timings")

    def __init__(self, dockerfile: str = "Dockerfile", dockerfile_text: bytes | None = None,
                 tags: list[str] | None = None, build_args: dict[str, str | None] | None = None,
                 target: str | None = None, no_cache: bool = False, pull: bool = False,
                 network: str = "none", labels: dict[str, str] | None = None, quiet: bool = False,
                 timings: bool = False,
                 find_image: Callable[[str, bool, str | None], Image] | None = None,
                 attach_network: Callable[..., Any] | None = None) -> None:
        self.dockerfile, self.dockerfile_text = dockerfile, dockerfile_text
        self.tags = tags or []
        self.build_args = build_args or {}
        self.target, self.no_cache, self.pull = target, no_cache, pull
        self.network = network
        self.labels = labels or {}
        self.quiet = quiet
        self.timings = timings     # --progress plain: each step's time
        self.find_image = find_image
        self.attach_network = attach_network


class BuildResult(Record):
    """The built image, its names, and how each step went (for the notebook's plots)."""

    FIELDS = ("image_id", "tags", "steps")

    def __init__(self, image_id: str, tags: list[str], steps: list[dict[str, Any]]) -> None:
        self.image_id, self.tags, self.steps = image_id, tags, steps


class _State:
    """A stage being built: the current image (config document, layers) and its ARGs."""

    def __init__(self, image_id: str, document: dict[str, Any], layers: list[Any]) -> None:
        self.image_id = image_id
        self.document = document
        self.layers = layers                      # LayerInfo, bottom first
        self.args: dict[str, str | None] = {}     # ARGs declared in this stage
        self.cmd_set = False

    @property
    def config(self) -> dict[str, Any]:
        return self.document.setdefault("config", {})


def build(context: str | os.PathLike[str] | BinaryIO, options: BuildOptions | None = None,
          on_event: Callable[[dict[str, Any]], None] | None = None,
          roots: StateRoots | None = None) -> BuildResult:
    """Build an image from a context (a directory, or a tar stream) and its Dockerfile. Like ``docker build``.

    Args:
        context: a directory, or a binary stream of a tar (plain or compressed).
        on_event: receives ``{"stream": text}`` progress and ``{"aux": {"ID": id}}`` at the end.

    Raises:
        DockerfileError: the Dockerfile cannot be parsed or a step is malformed (file:line).
        BuildError: a RUN step failed (its exit code); NotFound: FROM of a missing image, COPY
            of a missing file; InvalidArgument: COPY outside the context, a bad flag.
    """
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    options = options or BuildOptions()
    roots = roots or state_roots()
    store = ImageStore(roots.images)
    with store.lock("gc", shared=True), store.staging() as staging:
        if isinstance(context, (str, os.PathLike)):
            ctx = BuildContext.from_directory(context)
        else:
            ctx = BuildContext.from_tar(context, staging / "context")
        text = options.dockerfile_text if options.dockerfile_text is not None else \
            ctx.read_dockerfile(options.dockerfile)
        name = "Dockerfile" if options.dockerfile_text is not None else options.dockerfile
        return _Builder(store, roots, ctx, options, on_event, name).run(text)


class _Builder:
    def __init__(self, store: ImageStore, roots: StateRoots, ctx: BuildContext, options: BuildOptions,
                 on_event: Callable[[dict[str, Any]], None] | None, file: str) -> None:
        self.store, self.roots, self.ctx, self.options, self.file = store, roots, ctx, options, file
        self.on_event = on_event
        self.cache = BuildCache(store.root)
        self.steps: list[dict[str, Any]] = []
        self.used_args: set[str] = set()
        self.stage_states: dict[int, _State] = {}
        self.step = 0
        self.total = 0

    # -- output -------------------------------------------------------------------------------------

    def emit(self, text: str) -> None:
        if self.on_event is not None and not self.options.quiet:
            self.on_event({"stream": text})

    # -- the whole build ----------------------------------------------------------------------------

    def run(self, text: bytes | str) -> BuildResult:
        parsed = parse(text, self.file)
        for warning in parsed.warnings:
            self.emit(f"[WARNING]: {warning}\n")
        if parsed.warnings:
            self.emit("[WARNING]: Empty continuation lines will become errors in a future release.\n")
        self.escape = parsed.escape
        stages, meta = plan(parsed)
        target = self._target_index(stages)
        if self.options.labels:
            labels = sorted(self.options.labels.items())
            line = "LABEL " + " ".join(f"{json.dumps(k)}='{v}'" for k, v in labels)
            node = parse(line, self.file).nodes[0]
            node.start_line = node.end_line = 0
            stages[target].instructions.append(Instruction("LABEL", node.args, {}, node))
        needed = self._needed(stages, target)
        self.total = len(meta) + sum(1 + len(stages[i].instructions) for i in needed)
        self.meta = self._meta_args(meta)
        state = None
        for index in needed:
            state = self._build_stage(stages, stages[index])
            self.stage_states[index] = state
        assert state is not None
        unused = sorted(k for k in self.options.build_args if k not in self.used_args and k not in PROXY_ARGS)
        if unused:
            self.emit(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        image_id = state.image_id
        if not image_id:
            raise DockerfileError("no image was generated. Is your Dockerfile empty?", self.file)
        tags = [self.store.tag(image_id, tag) for tag in self.options.tags]
        self.emit(f"Successfully built {image_id[7:19]}\n")
        for tag in self.options.tags:
            from minidocker.image.reference import parse_reference

            self.emit(f"Successfully tagged {parse_reference(tag).familiar}\n")
        if self.on_event is not None:
            self.on_event({"aux": {"ID": image_id}})
        return BuildResult(image_id, tags, self.steps)

    def _target_index(self, stages: list[Stage]) -> int:
        if not self.options.target:
            return len(stages) - 1
        for stage in stages:
            if stage.name == self.options.target.lower():
                return stage.index
        raise NotFound(f"failed to reach build target {self.options.target} in Dockerfile",
                       hint="stages are named with FROM IMAGE AS NAME: " +
                            ", ".join(s.name for s in stages if s.name) or "none is named")

    def _stage_ref(self, stages: list[Stage], ref: str, before: int, line: int) -> int | None:
        """The index of the stage ``ref`` names (a name or a number), None for an image."""
        if ref.isdigit():
            index = int(ref)
            if index >= before:
                raise DockerfileError(f"circular dependency detected on stage: {ref}" if index == before else
                                      f"invalid from flag value {ref}: refers to a later build stage",
                                      self.file, line)
            return index
        for stage in stages:
            if stage.name == ref.lower():
                if stage.index >= before:
                    raise DockerfileError(f"circular dependency detected on stage: {ref}", self.file, line)
                return stage.index
        return None

    def _needed(self, stages: list[Stage], target: int) -> list[int]:
        """The stages the target needs (FROM and COPY --from of earlier stages), in order."""
        needed: set[int] = set()

        def visit(index: int) -> None:
            if index in needed:
                return
            needed.add(index)
            stage = stages[index]
            ref = self._stage_ref(stages, stage.base, index, stage.node.start_line)
            if ref is not None:
                visit(ref)
            for instruction in stage.instructions:
                source = instruction.flags.get("from")
                if isinstance(source, str) and instruction.name == "COPY" and "$" not in source:
                    ref = self._stage_ref(stages, source, index, instruction.line)
                    if ref is not None:
                        visit(ref)

        visit(target)
        return sorted(needed)

    def _meta_args(self, meta: list[Instruction]) -> dict[str, str]:
        """The ARGs before the first FROM, with BuildKit's platform ARGs; --build-arg overrides."""
        machine = os.uname().machine
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
        values = {"TARGETPLATFORM": f"linux/{arch}", "TARGETOS": "linux", "TARGETARCH": arch,
                  "TARGETVARIANT": "",
                  "BUILDPLATFORM": f"linux/{arch}", "BUILDOS": "linux", "BUILDARCH": arch,
                  "BUILDVARIANT": ""}
        self.builtin = dict(values)
        for instruction in meta:
            self._announce(instruction)
            for word in instruction.args:
                name, has_default, default = word.partition("=")
                name = self._expand(name, values, instruction)
                value = self.options.build_args.get(name)
                if name in self.options.build_args:
                    self.used_args.add(name)
                if value is None and has_default:
                    value = self._expand(default, values, instruction)
                if value is not None:
                    values[name] = value
        return values

    # -- a stage ------------------------------------------------------------------------------------

    def _build_stage(self, stages: list[Stage], stage: Stage) -> _State:
        self._announce(Instruction("FROM", [], {}, stage.node))
        base = self._expand(stage.base, self.meta, stage.node)
        ref = self._stage_ref(stages, base, stage.index, stage.node.start_line)
        if ref is not None:
            parent = self.stage_states[ref]
            state = _State(parent.image_id, _copy(parent.document), list(parent.layers))
        elif base.lower() == "scratch":
            from minidocker.image import manifest as mf

            document = mf.new_config([], {})
            document.pop("created", None)
            state = _State("", document, [])
        else:
            platform = self._expand(stage.platform, self.meta, stage.node) if stage.platform else None
            state = self._from_image(base, stage.node.start_line, platform)   # FROM --platform: for a pull
        if state.image_id:
            self.emit(f" ---> {state.image_id[7:19]}\n")
        if not any(item.startswith("PATH=") for item in state.config.get("Env") or []):
            from minidocker.runtime.spec import DEFAULT_PATH

            # Docker adds it to every stage
            state.config["Env"] = [DEFAULT_PATH, *(state.config.get("Env") or [])]
        triggers = list(state.config.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            self.emit(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for trigger in triggers:
                node = parse(trigger, self.file).nodes[0]
                node.start_line = node.end_line = stage.node.start_line
                self._dispatch(stages, stage, state, Instruction(node.instruction.upper(), node.args,
                                                                 _flags(node, self.file), node), trigger=True)
        for instruction in stage.instructions:
            self._announce(instruction)
            self._dispatch(stages, stage, state, instruction)
        return state

    def _from_image(self, reference: str, line: int, platform: str | None = None) -> _State:
        try:
            if self.options.find_image is not None:
                image = self.options.find_image(reference, self.options.pull, platform)
            else:
                image = self.store.get(reference)
        except NotFound as err:
            raise NotFound(f"{self.file}:{line}: {err}".split("\nhint:")[0],
                           hint="load or pull it first (minidocker load, minidocker pull), "
                                "or build FROM scratch"
                           ) from None
        except MinidockerError as err:    # the pull failed: say which line wanted the image
            err.args = (f"{self.file}:{line}: {err.args[0] if err.args else err}",)
            raise
        document = _copy(image.document or {})
        return _State(image.id, document, self.store.layers_of(image.id))

    def _announce(self, instruction: Instruction) -> None:
        self.step += 1
        self.emit(f"Step {self.step}/{self.total} : {instruction.node.original.strip()}\n")

    # -- expansion ----------------------------------------------------------------------------------

    def _expand(self, word: str, env: dict[str, str], instruction: Any) -> str:
        try:
            return process_word(word, env, self.escape)
        except ExpansionError as err:
            line = instruction.line if isinstance(instruction, Instruction) else instruction.start_line
            raise DockerfileError(str(err), self.file, line) from None

    def _arg_values(self, state: _State) -> dict[str, str]:
        """The ARGs in scope that have a value (declared in this stage)."""
        return {k: v for k, v in state.args.items() if v is not None}

    def _env(self, state: _State) -> dict[str, str]:
        """What variables expand to: the config's Env first, then the stage's ARGs."""
        env = self._arg_values(state)
        env.update(env_map(state.config.get("Env") or []))
        return env

    # -- the steps ----------------------------------------------------------------------------------

    def _dispatch(self, stages: list[Stage], stage: Stage, state: _State, instruction: Instruction,
                  trigger: bool = False) -> None:
        name = instruction.name
        started = time.monotonic()
        if name == "RUN":
            self._run(state, instruction)
        elif name in ("COPY", "ADD"):
            self._copy(stages, stage, state, instruction)
        elif name == "WORKDIR":
            self._workdir(state, instruction)
        elif name in _METADATA:
            comment = self._metadata(state, instruction)
            self._commit(state, instruction, [*self._shell(state), "#(nop) ", comment], None)
        else:
            raise DockerfileError(f"unknown instruction: {name}", self.file, instruction.line)
        self.steps[-1]["seconds"] = seconds = time.monotonic() - started
        self.steps[-1]["stage"] = stage.index
        self.steps[-1]["instruction"] = instruction.node.original.strip()
        if self.options.timings:
            self.emit(f" ---> done in {seconds:.3f}s\n")

    def _shell(self, state: _State) -> list[str]:
        return list(state.config.get("Shell") or DEFAULT_SHELL)

    def _metadata(self, state: _State, ins: Instruction) -> str:
        """Apply a config-only instruction; returns Docker's commit message for it."""
        config, env, args = state.config, self._env(state), ins.args
        name = ins.name
        if name == "ENV":
            items = []
            for key, value in zip(args[::2], args[1::2]):   # all expanded with the Env before this line
                key, value = self._expand(key, env, ins), self._expand(value, env, ins)
                _set_env(config, key, value)
                items.append(f"{key}={value}")
            return "ENV " + " ".join(items)
        if name == "LABEL":
            labels = dict(config.get("Labels") or {})
            items = []
            for key, value in zip(args[::2], args[1::2]):
                key, value = self._expand(key, env, ins), self._expand(value, env, ins)
                labels[key] = value
                items.append(f"{key}={value}")
            config["Labels"] = labels
            return "LABEL " + " ".join(items)
        if name == "MAINTAINER":
            state.document["author"] = args[0]
            return "MAINTAINER " + args[0]
        if name == "EXPOSE":
            ports = [self._expand(p, env, ins) for p in args]
            exposed = dict(config.get("ExposedPorts") or {})
            for port in ports:
                for key in _port_keys(port, self.file, ins.line):
                    exposed[key] = {}
            config["ExposedPorts"] = exposed
            return "EXPOSE " + " ".join(sorted(ports))
        if name == "USER":
            config["User"] = self._expand(args[0], env, ins)
            return "USER " + config["User"]
        if name == "VOLUME":
            volumes = dict(config.get("Volumes") or {})
            given = [self._expand(v, env, ins) for v in args]
            for volume in given:
                if not volume.strip():
                    raise DockerfileError("VOLUME specified can not be an empty string", self.file, ins.line)
                volumes[volume] = {}
            config["Volumes"] = volumes
            return "VOLUME [" + " ".join(given) + "]"
        if name == "STOPSIGNAL":
            signal_name = self._expand(args[0], env, ins)
            _check_signal(signal_name, self.file, ins.line)
            config["StopSignal"] = signal_name
            return "STOPSIGNAL " + signal_name
        if name in ("CMD", "ENTRYPOINT"):
            command = list(args) if ins.node.json else [*self._shell(state), *args] if args else []
            if name == "CMD":
                config["Cmd"] = command
                state.cmd_set = True
            else:
                config["Entrypoint"] = command or None
                if not state.cmd_set:
                    config["Cmd"] = None
            return f"{name} {go_quote(command)}"
        if name == "SHELL":
            config["Shell"] = list(args)
            return "SHELL [" + " ".join(args) + "]"
        if name == "ONBUILD":
            expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", ins.node.original)
            config["OnBuild"] = [*(config.get("OnBuild") or []), expression]
            return "ONBUILD " + expression
        if name == "HEALTHCHECK":
            health = _healthcheck(ins, self.file)
            config["Healthcheck"] = health
            return "HEALTHCHECK " + _health_text(health)
        if name == "ARG":
            parts = []
            for word in args:
                key, has_default, default = word.partition("=")
                key = self._expand(key, env, ins)
                value: str | None = None
                if key in self.options.build_args:
                    value = self.options.build_args[key]
                    self.used_args.add(key)
                if value is None and has_default:
                    value = self._expand(default, env, ins)
                if value is None and key in self.meta:
                    value = self.meta[key]
                state.args[key] = value
                parts.append(f"{key}={default}" if has_default else key)
            return "ARG " + " ".join(parts)
        raise DockerfileError(f"unknown instruction: {name}", self.file, ins.line)

    # -- cache and commit ---------------------------------------------------------------------------

    def _container_config(self, state: _State, cmd: list[str]) -> dict[str, Any]:
        cc = {k: v for k, v in state.config.items() if v not in (None, [], {}, "")}
        cc["Cmd"] = cmd
        return cc

    def _probe(self, state: _State, cc: dict[str, Any], extra: Any = None) -> str | None:
        """The cached image of this step, if any (and not --no-cache)."""
        if self.options.no_cache:
            return None
        key = cache_key(state.image_id, {"config": cc, "extra": extra} if extra else cc)
        hit = self.cache.get(key, exists=self.store.has_blob)   # the image's config blob
        if hit is None:
            return None
        try:
            self.store.record(hit)
            image = self.store.load_image(hit)
        except NotFound:
            return None
        state.image_id = hit
        state.document = _copy(image.document or {})
        state.layers = self.store.layers_of(hit)
        self.emit(" ---> Using cache\n")
        self.emit(f" ---> {hit[7:19]}\n")
        self.steps.append({"cached": True, "image": hit})
        return hit

    def _commit(self, state: _State, ins: Instruction, cmd: list[str], layer: Any | None,
                created_by: str | None = None, extra: Any = None, probe: bool = True) -> None:
        """Probe the cache; else a new image: the state's config, one history entry, maybe a layer."""
        cc = self._container_config(state, cmd)
        if probe and self._probe(state, cc, extra):
            return
        container_id = os.urandom(32).hex()
        if probe:
            self.emit(f" ---> Running in {container_id[:12]}\n")
            self.emit(f"Removing intermediate container {container_id[:12]}\n")
        self._new_image(state, cc, layer, created_by or " ".join(cmd), container_id, extra)

    def _new_image(self, state: _State, cc: dict[str, Any], layer: Any, created_by: str, container_id: str,
                   extra: Any) -> None:
        from minidocker.image import manifest as mf

        document = state.document
        document.setdefault("architecture", "amd64")
        document.setdefault("os", "linux")
        document["created"] = _now()
        document["container"] = container_id
        document["container_config"] = cc
        config = {k: v for k, v in state.config.items() if v not in (None, [], {}, "")}
        document["config"] = config
        rootfs = document.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        rootfs.setdefault("diff_ids", [])
        entry = mf.history_entry(created_by, empty_layer=layer is None, created=document["created"])
        if layer is not None:
            rootfs["diff_ids"].append(layer.diff_id)
            state.layers = [*state.layers, layer]
        document.setdefault("history", []).append(entry)
        key = cache_key(state.image_id, {"config": cc, "extra": extra} if extra else cc)
        parent = state.image_id
        image = self.store.add_image(mf.canonical_json(document), state.layers, parent=parent or None)
        self.cache.put(key, image.id)
        state.image_id = image.id
        state.document = _copy(image.document)
        self.emit(f" ---> {image.id[7:19]}\n")
        self.steps.append({"cached": False, "image": image.id, "layer": layer.diff_id if layer else None})

    # -- steps with a container ---------------------------------------------------------------------

    def _layer_dirs(self, state: _State) -> list[Path]:
        return [self.store.layer_path(layer.diff_id) for layer in reversed(state.layers)]

    def _container(self, state: _State, container_id: str) -> _Container:
        return _Container(self.roots.lib / "builds" / container_id, self._layer_dirs(state))

    def _commit_upper(self, box: _Container) -> Any:
        """The container's diff as a layer, or None when it changed nothing."""
        if not any(os.scandir(box.snapshot.upper)):
            return None
        box.snapshot.unmount()
        return self.store.add_upper_layer(box.snapshot.upper, move=True)

    def _run(self, state: _State, ins: Instruction) -> None:
        if ins.node.json:
            command = list(ins.args)
        else:
            command = [*self._shell(state), self._heredoc_script(ins)]
        config_env = list(state.config.get("Env") or [])
        env_keys = {item.partition("=")[0] for item in config_env}
        args = sorted(f"{k}={v}" for k, v in self._arg_values(state).items() if k not in env_keys)
        proxies = sorted(f"{k}={v}" for k, v in self.options.build_args.items()
                         if k in PROXY_ARGS and k not in state.args and v is not None and k not in env_keys)
        save = [f"|{len(args)}", *args, *command] if args or proxies else command
        mounts = ins.flags.get("mount")
        cc = self._container_config(state, save)
        network = ins.flags.get("network")
        extra = {"mount": mounts, "network": network} if mounts or network else None
        if self._probe(state, cc, extra):
            return
        container_id = os.urandom(32).hex()
        self.emit(f" ---> Running in {container_id[:12]}\n")
        with self._container(state, container_id) as box:
            status, tail = self._execute(state, box, container_id, command, [*config_env, *args, *proxies],
                                         mounts if isinstance(mounts, str) else None,
                                         ins.flags.get("network") or self.options.network)
            if status.exit_code != 0:
                hint = ("its last lines of output:\n" + tail) if self.options.quiet and tail else None
                raise BuildError(f"The command '{' '.join(command)}' returned a non-zero code: "
                                 f"{status.exit_code}",
                                 status.exit_code or 1, tail, hint=hint)
            layer = self._commit_upper(box)
        self.emit(f"Removing intermediate container {container_id[:12]}\n")
        self._commit(state, ins, save, layer, extra=extra, probe=False)

    def _heredoc_script(self, ins: Instruction) -> str:
        """RUN's shell-form text, its heredocs folded in as Docker (BuildKit) does."""
        line = ins.args[0] if ins.args else ""
        docs = ins.node.heredocs
        if not docs:
            return line
        from minidocker.build.parser import parse_heredoc

        if parse_heredoc(line.strip()) is not None and len(docs) == 1:
            return docs[0].content      # RUN <<EOF: the document is the script
        return line + "".join("\n" + doc.content + doc.name for doc in docs)

    def _execute(self, state: _State, box: _Container, container_id: str, command: list[str], env: list[str],
                 mounts: str | None, network: str) -> tuple[Any, str]:
        """Run ``command`` in the step's container, its output streamed as events."""
        import threading

        from minidocker.cgroups import CGROUP_PARENT
        from minidocker.image.runconfig import RunArgs, apply_image_config
        from minidocker.runtime import default_spec
        from minidocker.runtime import run as runtime_run
        from minidocker.runtime.run import empty_stdin

        rootfs = box.snapshot.rootfs
        spec = default_spec(str(rootfs), command, hostname=container_id[:12])
        image_config = {**state.config, "Env": env, "Entrypoint": None, "Cmd": command}
        image_config.pop("Volumes", None)   # Docker: what RUN writes under a VOLUME is dropped; tmpfs below
        apply_image_config(spec, image_config, [rootfs], RunArgs(command=command, entrypoint=""),
                           hostname=container_id[:12])
        for volume in sorted(state.config.get("Volumes") or {}):
            spec["mounts"].append({"destination": volume, "type": "tmpfs", "source": "tmpfs",
                                   "options": ["rw", "nosuid", "nodev", "relatime"]})
        spec.pop("annotations", None)
        spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{container_id}"
        cleanup = None
        before_start = None
        if network == "host":
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
        elif network not in ("none", "default", ""):
            if network != "bridge" or self.options.attach_network is None:
                raise InvalidArgument(f"network mode {network!r} is not supported for RUN here",
                                      hint="use --network none or host")
            before_start, cleanup = self.options.attach_network(container_id, spec, box.directory)
        if mounts:
            self._run_mounts(spec, mounts, box, state)
        from minidocker.rootfs import secure_join

        # mount points the runtime will have to create (RUN --mount targets, /etc/hosts for a bridge,
        # /proc in a bare image ...) are not part of the step's diff: Docker keeps them in an init layer
        stubs = [m["destination"] for m in spec["mounts"]
                 if not os.path.lexists(secure_join(rootfs, m["destination"]))]
        cwd = spec["process"]["cwd"]
        if cwd != "/":
            os.makedirs(secure_join(rootfs, cwd), exist_ok=True)
        read_fd, write_fd = os.pipe()
        stdin = empty_stdin()
        tail: list[str] = []

        def pump() -> None:
            with os.fdopen(read_fd, "rb", buffering=0) as pipe:
                while chunk := pipe.read(65536):
                    text = chunk.decode(errors="replace")
                    tail.append(text)
                    del tail[:-50]
                    self.emit(text)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        interrupted: list[int] = []

        def started(pid: int) -> None:
            """Ctrl-C cancels the build (as docker build does): PID 1 of a namespace ignores SIGINT,
            so the step's container is killed instead of being sent the signal."""
            import signal

            def cancel(signum: int, _frame: object) -> None:
                interrupted.append(signum)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, cancel)      # the runtime puts the previous handlers back when it returns
            if before_start is not None:
                before_start(pid)

        try:
            status = runtime_run(spec, stdio=(stdin, write_fd, write_fd), before_start=started)
        finally:
            os.close(write_fd)
            os.close(stdin)
            reader.join()
            if cleanup is not None:
                cleanup()
            _remove_stubs(box.snapshot.upper, stubs)
        if interrupted:
            raise KeyboardInterrupt
        lines = "".join(tail).splitlines()[-10:]
        return status, "\n".join(lines)

    def _run_mounts(self, spec: dict[str, Any], mounts: str, box: _Container, state: _State) -> None:
        """``RUN --mount=type=cache|bind|tmpfs,target=...`` as BuildKit spells it."""
        for text in mounts.split("\n"):
            fields = dict(part.partition("=")[::2] for part in text.split(","))
            kind = fields.get("type", "bind")
            target = fields.get("target") or fields.get("dst") or fields.get("destination")
            if not target:
                raise InvalidArgument(f"invalid mount {text!r}: a target is required")
            if kind == "cache":
                cache_id = fields.get("id") or target
                import hashlib

                digest = hashlib.sha256(cache_id.encode()).hexdigest()[:32]
                source = self.roots.lib / "buildcache-mounts" / digest
                source.mkdir(parents=True, exist_ok=True)
                spec["mounts"].append({"destination": target, "type": "bind", "source": str(source),
                                       "options": ["rbind", "rw"]})
            elif kind == "tmpfs":
                spec["mounts"].append({"destination": target, "type": "tmpfs", "source": "tmpfs",
                                       "options": ["nosuid", "nodev"]})
            elif kind == "bind":
                if fields.get("from"):
                    raise InvalidArgument(f"invalid mount {text!r}: --mount from= a stage or image is "
                                          "not supported")
                source = self.ctx.resolve(fields.get("source") or fields.get("src") or ".")
                options = ["rbind", "rw" if fields.get("rw") in ("", "true") and "rw" in fields else "ro"]
                spec["mounts"].append({"destination": target, "type": "bind", "source": str(source),
                                       "options": options})
            else:
                raise InvalidArgument(f"invalid mount type {kind!r}: expected bind, cache or tmpfs")

    def _workdir(self, state: _State, ins: Instruction) -> None:
        requested = self._expand(ins.args[0], self._env(state), ins)
        if not requested:
            raise DockerfileError("cannot normalize nothing", self.file, ins.line)
        current = state.config.get("WorkingDir") or "/"
        workdir = requested if requested.startswith("/") else os.path.join("/", current, requested)
        state.config["WorkingDir"] = workdir
        cmd = [*self._shell(state), f"#(nop) WORKDIR {workdir}"]
        cc = self._container_config(state, cmd)
        if self._probe(state, cc):
            return
        container_id = os.urandom(32).hex()
        self.emit(f" ---> Running in {container_id[:12]}\n")
        with self._container(state, container_id) as box:
            from minidocker.rootfs import secure_join

            path = secure_join(box.snapshot.rootfs, workdir)
            if not path.is_dir():
                os.makedirs(path, mode=0o755, exist_ok=True)
            layer = self._commit_upper(box)
        self.emit(f"Removing intermediate container {container_id[:12]}\n")
        self._commit(state, ins, cmd, layer, probe=False)

    # -- COPY and ADD -------------------------------------------------------------------------------

    def _copy(self, stages: list[Stage], stage: Stage, state: _State, ins: Instruction) -> None:
        env = self._env(state)
        args = list(ins.args)
        heredocs = ins.node.heredocs
        dest = self._expand(args[-1], env, ins) if not ins.node.json else args[-1]
        sources = args[:-1]
        flags = ins.flags
        source_from = flags.get("from")
        if ins.name == "ADD" and source_from:
            raise DockerfileError("Unknown flag: from", self.file, ins.line)
        workdir = state.config.get("WorkingDir") or "/"
        dest_path = dest if dest.startswith("/") else os.path.join("/", workdir, dest)
        if dest.endswith("/") and not dest_path.endswith("/"):
            dest_path += "/"
        several = len(sources) + (len(heredocs) if heredocs else 0) > 1
        if several and not dest_path.endswith("/") and not heredocs:
            raise DockerfileError(f"When using {ins.name} with more than one source file, the destination "
                                  "must be a directory and end with a /", self.file, ins.line)
        source_box = None
        try:
            if isinstance(source_from, str):
                source_from = self._expand(source_from, self.meta, ins)
                ref = self._stage_ref(stages, source_from, stage.index, ins.line)
                if ref is not None:
                    if ref not in self.stage_states:
                        raise DockerfileError(f"invalid from flag value {source_from}: stage not built",
                                              self.file, ins.line)
                    src_state = self.stage_states[ref]
                else:
                    src_state = self._from_image(source_from, ins.line)
                source_box = self._container(src_state, os.urandom(32).hex())
                source_box.__enter__()
            items = self._sources(ins, sources, env, source_box, heredocs)
            hashes = [h for _, _, h in items]
            chown = flags.get("chown")
            # Docker's own spelling, without a space after the flag (builder/dockerfile/copy.go)
            created = f"{ins.name} {'--chown=' + chown if isinstance(chown, str) and chown else ''}" \
                      f"{source_hash(hashes)} in {dest} "
            cmd = [*self._shell(state), f"#(nop) {created}"]
            extra = {k: v for k, v in flags.items() if k in ("chown", "chmod")} or None
            cc = self._container_config(state, cmd)
            if self._probe(state, cc, extra):
                return
            container_id = os.urandom(32).hex()     # COPY prints no "Running in" (Docker's legacy builder)
            with self._container(state, container_id) as box:
                owner = _chown(flags.get("chown"), box.snapshot.rootfs, self.file, ins.line)
                mode = _chmod(flags.get("chmod"), self.file, ins.line)
                for kind, path, _ in items:
                    self._place(ins, kind, path, dest_path, box.snapshot.rootfs, owner, mode,
                                keep_owner=source_box is not None, several=len(items) > 1)
                layer = self._commit_upper(box)
            self._commit(state, ins, cmd, layer, extra=extra, probe=False)
        except OSError as err:
            raise InvalidArgument(f"{self.file}:{ins.line}: failed to {ins.name.lower()} files: "
                                  f"{err}") from err
        finally:
            if source_box is not None:
                source_box.__exit__(None, None, None)

    def _sources(self, ins: Instruction, sources: list[str], env: dict[str, str],
                 source_box: _Container | None, heredocs: list[Any]) -> list[tuple[str, Any, str]]:
        """(kind, what, checksum) of each source: a context or image path, or a heredoc's text."""
        import hashlib

        items: list[tuple[str, Any, str]] = []
        names = {doc.name for doc in heredocs}
        for raw in sources:
            word = raw if ins.node.json else self._expand(raw, env, ins)
            token = raw.lstrip("0123456789")
            if token.startswith("<<") and heredocs:
                name = token.lstrip("<-").strip("'\"")
                doc = next((d for d in heredocs if d.name == name), None)
                if doc is not None and name in names:
                    content = self._expand(doc.content, env, ins) if doc.expand else doc.content
                    checksum = "file:" + hashlib.sha256(content.encode()).hexdigest()
                    items.append(("heredoc", (name, content), checksum))
                    continue
            if re.match(r"^[a-z][a-z0-9+.-]*://", word) or word.startswith("git@"):
                if ins.name == "COPY":
                    raise DockerfileError(f"source can't be a URL for COPY: {word}", self.file, ins.line)
                raise InvalidArgument(f"{self.file}:{ins.line}: failed to add {word}: remote sources are not "
                                      "supported offline",
                                      hint="download the file into the context, then COPY it")
            try:
                if source_box is not None:
                    items += self._image_sources(source_box, word)
                elif any(c in word for c in "*?["):
                    matches = self.ctx.glob(word)
                    if not matches:
                        raise NotFound(f"no source files were specified: {word} matched nothing")
                    items += [self._context_source(m) for m in matches]
                else:
                    items.append(self._context_source(word))
            except (NotFound, InvalidArgument) as err:
                if isinstance(err, DockerfileError):
                    raise
                raise type(err)(f"{self.file}:{ins.line}: {ins.name} failed: {str(err).split(chr(10))[0]}",
                                hint=err.hint) from None
        return items

    def _context_source(self, path: str) -> tuple[str, Any, str]:
        host = self.ctx.resolve(path)
        rel = str(host.relative_to(self.ctx.root)) if host != self.ctx.root else ""
        if host.is_dir():
            # Docker's walk includes the directory itself (all but the context root), names from the root
            hashes = [file_hash(host, rel)] if rel else []
            for sub, st in self.ctx.walk(rel):
                name = f"{rel}/{sub}" if rel else sub
                if stat.S_ISLNK(st.st_mode):   # dockerd hashes what a symlink points to (in the context)
                    from minidocker.rootfs import secure_join

                    target = secure_join(self.ctx.root, name)
                    if not os.path.lexists(target):
                        continue                 # a dangling one is left out
                    hashes.append(file_hash(target, str(target.relative_to(self.ctx.root))))
                else:
                    hashes.append(file_hash(self.ctx.root / name, name))
            return "context-dir", rel, "dir:" + dir_hash(hashes)
        return "context-file", rel, "file:" + file_hash(host, rel)

    def _image_sources(self, box: _Container, word: str) -> list[tuple[str, Any, str]]:
        from minidocker.rootfs import secure_join

        root = box.snapshot.rootfs
        host = secure_join(root, word)
        if not os.path.lexists(host):
            raise NotFound(f"file not found in build context or excluded by .dockerignore: stat {word}: "
                           "file does not exist")

        def entry_hash(path: Path) -> str | None:
            """dockerd resolves a symlink of an image inside its root and hashes what it points to;
            a dangling one is left out of a directory's checksum."""
            if path.is_symlink():
                path = secure_join(root, str(path.relative_to(root)))
                if not os.path.lexists(path):
                    return None
            st = os.lstat(path)
            return file_hash(path, str(path.relative_to(root)), st.st_uid, st.st_gid, image=True)

        if host.is_dir():
            hashes = [entry_hash(host)] if host != root else []
            for directory, dirs, files in os.walk(host):
                dirs.sort()
                hashes += [entry_hash(Path(directory) / name) for name in sorted(dirs + files)]
            return [("image-dir", host, "dir:" + dir_hash([h for h in hashes if h is not None]))]
        return [("image-file", host, "file:" + (entry_hash(host) or ""))]

    def _place(self, ins: Instruction, kind: str, what: Any, dest: str, rootfs: Path,
               owner: tuple[int, int] | None, mode: int | None, keep_owner: bool, several: bool) -> None:
        """Copy one source into the container's filesystem at ``dest`` (Docker's trailing-slash rules)."""
        from minidocker.rootfs import secure_join

        if kind == "heredoc":
            name, content = what
            target = secure_join(rootfs, dest + name if dest.endswith("/") else dest)
            _makedirs(target.parent, rootfs, owner)
            target.write_bytes(content.encode())
            os.chmod(target, mode if mode is not None else 0o644)
            os.chown(target, *(owner or (0, 0)))
            return
        if kind in ("context-dir", "image-dir"):
            source = self.ctx.root / what if kind == "context-dir" else what
            target = secure_join(rootfs, dest)
            _makedirs(target, rootfs, owner)
            if kind == "context-dir":
                entries = ((sub, source / sub) for sub, _ in self.ctx.walk(what))
            else:
                entries = _walk_tree(source)
            for sub, path in entries:
                _copy_entry(path, secure_join(rootfs, f"{dest.rstrip('/')}/{sub}"), rootfs, owner, mode,
                            keep_owner and kind == "image-dir")
            return
        source = self.ctx.root / what if kind == "context-file" else what
        if ins.name == "ADD" and kind == "context-file" and _is_archive(source):
            target = secure_join(rootfs, dest)
            _makedirs(target, rootfs, owner)
            _extract(source, target)
            return
        into = dest.endswith("/") or several or secure_join(rootfs, dest).is_dir()
        target = secure_join(rootfs, dest.rstrip("/") + "/" + source.name if into else dest)
        _makedirs(target.parent, rootfs, owner)
        _copy_entry(source, target, rootfs, owner, mode, keep_owner and kind == "image-file", follow=True)


class _Container:
    """A step's container filesystem: an overlay snapshot of the parent's layers, mounted; removed on exit."""

    def __init__(self, directory: Path, lowers: list[Path]) -> None:
        self.directory, self.lowers = directory, lowers

    def __enter__(self) -> _Container:
        from minidocker.storage import Snapshot

        self.snapshot = Snapshot(self.directory, self.lowers)
        try:                                   # a Ctrl-C at any point here leaves nothing either
            lowers = self.lowers
            if not lowers:                     # FROM scratch: overlay needs a lower directory
                empty = self.directory / "empty"
                empty.mkdir(parents=True, exist_ok=True)
                lowers = [empty]
            self.snapshot = Snapshot.create(lowers, self.directory)
            self.snapshot.mount()
        except BaseException:
            self.snapshot.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.snapshot.remove()


def _remove_stubs(upper: Path, targets: list[str]) -> None:
    """Drop the mount points the runtime created (and their new parents) from the step's diff, as
    Docker (init layer) and BuildKit (mount stubs) do: an empty directory or file made only to mount on."""
    from minidocker.storage.whiteout import is_opaque

    for target in targets:
        path = upper / target.strip("/")
        while path != upper and os.path.lexists(path):
            try:
                if path.is_dir() and not path.is_symlink():
                    if is_opaque(path):
                        break               # it hides the lower directory: removing it would undo a deletion
                    path.rmdir()            # fails (and stops) when the RUN left something in it
                elif path.stat().st_size == 0:
                    path.unlink()
                else:
                    break
            except OSError:
                break
            path = path.parent
            if any(os.scandir(path)) if path != upper else True:
                break


def _copy(document: Any) -> Any:
    """A deep copy of a JSON document (``copy.deepcopy`` costs an import and is slower)."""
    return json.loads(json.dumps(document))


def _flags(node: Any, file: str) -> dict[str, str | bool]:
    from minidocker.build.instructions import parse_flags

    return parse_flags(node, file)


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = list(config.get("Env") or [])
    for i, item in enumerate(env):
        if item.partition("=")[0] == key:
            env[i] = f"{key}={value}"
            break
    else:
        env.append(f"{key}={value}")
    config["Env"] = env


def _port_keys(port: str, file: str, line: int) -> list[str]:
    number, _, proto = port.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(f"invalid proto: {proto}", file, line)
    start, _, end = number.partition("-")
    if not start.isdigit() or (end and not end.isdigit()):
        raise DockerfileError(f"invalid containerPort: {number}", file, line)
    return [f"{p}/{proto}" for p in range(int(start), int(end or start) + 1)]


def _check_signal(name: str, file: str, line: int) -> None:
    import signal

    if name.isdigit() or "$" in name:
        return
    upper = name.upper()
    known = hasattr(signal, upper if upper.startswith("SIG") else "SIG" + upper)
    if not known and not upper.startswith("SIGRT"):
        raise DockerfileError(f"Invalid signal: {name}", file, line)


_DURATION = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _parse_duration(text: str, flag: str, file: str, line: int) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    if text == "0":
        return 0
    pos, total = 0, 0
    for match in re.finditer(_DURATION, text):
        if match.start() != pos:
            break
        total += int(float(match.group(1)) * _UNITS[match.group(2)])
        pos = match.end()
    if pos != len(text) or not text:
        raise DockerfileError(f'time: invalid duration "{text}"', file, line)
    if 0 < total < 10**6:
        raise DockerfileError(f"Interval \"{flag}\" cannot be less than 1ms", file, line)
    return total


def _go_duration(ns: int) -> str:
    """A duration as Go's time.Duration.String() writes it (``1m30s``, ``500ms``, ``0s``)."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 1000), ("ns", 1)):
            if ns >= size:
                value = ns / size
                return (f"{value:.9f}".rstrip("0").rstrip(".")) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = f"{rest / 10**9:.9f}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{seconds}s"


def _healthcheck(ins: Instruction, file: str) -> dict[str, Any]:
    args = ins.args
    if args and args[0].upper() == "NONE":
        if len(args) > 1 or ins.flags:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments", file, ins.line)
        return {"Test": ["NONE"]}
    if not args or args[0].upper() != "CMD" or len(args) < 2 or not args[1:] or args[1:] == [""]:
        if args and args[0].upper() != "CMD":
            message = "Unknown type \"" + args[0] + "\" in HEALTHCHECK (try CMD)"
        else:
            message = "Missing command after HEALTHCHECK CMD"
        raise DockerfileError(message, file, ins.line)
    test = ["CMD", *args[1:]] if ins.node.json else ["CMD-SHELL", args[1]]
    health: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                      ("start-interval", "StartInterval")):
        value = ins.flags.get(flag)
        if isinstance(value, str):
            ns = _parse_duration(value, flag, file, ins.line)
            if ns:
                health[key] = ns
    retries = ins.flags.get("retries")
    if isinstance(retries, str):
        if not retries.lstrip("-").isdigit():
            raise DockerfileError(f'strconv.ParseInt: parsing "{retries}": invalid syntax', file, ins.line)
        if int(retries) < 0:
            raise DockerfileError("--retries cannot be negative", file, ins.line)
        if int(retries):
            health["Retries"] = int(retries)
    return health


def _health_text(health: dict[str, Any]) -> str:
    """Go's ``%q`` of Docker's HealthConfig, as the legacy builder writes it in the history."""
    retries = health.get("Retries", 0)
    char = f"'\\x{retries:02x}'" if retries < 0x20 or retries == 0x7F else repr(chr(retries))
    durations = " ".join(f'"{_go_duration(health.get(k, 0))}"'
                         for k in ("Interval", "Timeout", "StartPeriod"))
    return f"&{{{go_quote(health['Test'])} {durations} {char}}}"


def _read_ids(rootfs: Path, name: str) -> dict[str, int]:
    from minidocker.image.runconfig import read_image_file

    data = read_image_file([rootfs], f"etc/{name}") or b""
    ids = {}
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            ids.setdefault(parts[0], int(parts[2]))
    return ids


def _chown(value: Any, rootfs: Path, file: str, line: int) -> tuple[int, int] | None:
    """``--chown=user[:group]``: names from the container's /etc/passwd and /etc/group; gid = uid if
    no group."""
    if not isinstance(value, str) or not value:
        return None
    user, _, group = value.partition(":")

    def lookup(name: str, table: str, kind: str) -> int:
        if name.isdigit():
            return int(name)
        ids = _read_ids(rootfs, table)
        if name not in ids:
            what = "user" if kind == "uid" else "group"
            raise DockerfileError(f"unable to convert uid/gid chown string to host mapping: can't find "
                                  f"{kind} for {what} {name}: no such {what}: {name}", file, line)
        return ids[name]

    uid = lookup(user, "passwd", "uid")
    gid = lookup(group, "group", "gid") if group else uid
    return uid, gid


def _chmod(value: Any, file: str, line: int) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    if not re.fullmatch(r"[0-7]{1,4}", value):
        raise DockerfileError(f"invalid chmod parameter: {value}. it should be octal string and between "
                              "0 and 07777", file, line)
    return int(value, 8)


def _makedirs(path: Path, rootfs: Path, owner: tuple[int, int] | None) -> None:
    """Create ``path`` and its missing parents (0755, owned by ``owner`` or root), inside ``rootfs``."""
    missing = []
    current = path
    while not current.exists() and current != rootfs:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.chmod(directory, 0o755)
        os.chown(directory, *(owner or (0, 0)))


def _walk_tree(top: Path) -> Iterator[tuple[str, Path]]:
    for directory, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(directory) / name
            yield str(path.relative_to(top)), path


def _copy_entry(source: Path, target: Path, rootfs: Path, owner: tuple[int, int] | None, mode: int | None,
                keep_owner: bool, follow: bool = False) -> None:
    """One file, directory or symlink copied with its mode; owner root, ``--chown``'s, or kept (--from)."""
    st = os.stat(source) if follow else os.lstat(source)
    uid, gid = owner if owner else ((st.st_uid, st.st_gid) if keep_owner else (0, 0))
    kind = stat.S_IFMT(st.st_mode)
    if kind != stat.S_IFDIR and os.path.lexists(target) and (not target.is_dir() or target.is_symlink()):
        os.unlink(target)
    if kind == stat.S_IFDIR:
        if not target.is_dir() or target.is_symlink():
            if os.path.lexists(target):
                os.unlink(target)
            os.mkdir(target)
        os.chmod(target, mode if mode is not None else stat.S_IMODE(st.st_mode))
        os.chown(target, uid, gid)
    elif kind == stat.S_IFLNK:
        os.symlink(os.readlink(source), target)
        os.lchown(target, uid, gid)
    elif kind == stat.S_IFREG:
        import shutil

        if target.is_dir() and not target.is_symlink():
            raise InvalidArgument(f"cannot copy {source.name} over the directory "
                                  f"{target.relative_to(rootfs)}")
        shutil.copyfile(source, target, follow_symlinks=True)
        os.chown(target, uid, gid)
        os.chmod(target, mode if mode is not None else stat.S_IMODE(st.st_mode))
    else:
        return      # devices, fifos and sockets are not copied from a context
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _is_archive(path: Path) -> bool:
    """A local tar, plain or compressed (gzip, bzip2, xz), that ADD unpacks."""
    import tarfile

    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(_ARCHIVE_MAGIC):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar" or (tarfile.is_tarfile(path) and len(head) == 512)


def _extract(path: Path, target: Path) -> None:
    """ADD's unpacking of a local archive, with chapter 05's safety checks."""
    import bz2
    import gzip
    import lzma

    from minidocker.storage.layer import apply_layer

    with open(path, "rb") as f:
        head = f.read(6)
    opener = gzip.open if head.startswith(b"\x1f\x8b") else bz2.open if head.startswith(b"BZh") else \
        lzma.open if head.startswith(b"\xfd7zXZ\x00") else open
    with opener(path, "rb") as stream:
        apply_layer(stream, target, overlay=False)


# -- docker commit --change ---------------------------------------------------------------------------

COMMIT_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL",
                  "USER", "VOLUME", "WORKDIR")


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of an image's ``config`` with Dockerfile instructions applied. Like ``docker commit --change``.

    Only the instructions that set config alone (:data:`COMMIT_CHANGES`) are allowed, with
    the builder's own grammar and semantics (ENV expands, CMD's shell form gets the Shell).

    Raises:
        DockerfileError: a change that does not parse. InvalidArgument: another
            instruction ("run is not a valid change command", dockerd's words).
    """
    from minidocker.build.instructions import _check, parse_flags

    parsed = parse("\n".join(changes), "--change")
    instructions = []
    for node in parsed.nodes:   # each change is a line of a Dockerfile without FROM
        if node.instruction.upper() not in COMMIT_CHANGES:
            raise InvalidArgument(f"{node.instruction.lower()} is not a valid change command")
        _check(node, parsed.file)
        instructions.append(Instruction(node.instruction.upper(), list(node.args),
                                        parse_flags(node, parsed.file), node))
    builder = _Builder.__new__(_Builder)   # only its config-only steps: no store, no context
    builder.file, builder.escape, builder.options = "--change", parsed.escape, BuildOptions()
    builder.used_args, builder.meta = set(), {}
    state = _State("", {"config": _copy(config)}, [])
    for ins in instructions:
        if ins.name == "WORKDIR":   # no container to make it in: the config only, as dockerd's commit
            workdir = builder._expand(ins.args[0], builder._env(state), ins)
            current = state.config.get("WorkingDir") or "/"
            state.config["WorkingDir"] = (workdir if workdir.startswith("/")
                                          else os.path.join("/", current, workdir))
        else:
            builder._metadata(state, ins)
    return state.config
