"""Chapter 08: building images from a Dockerfile (minidocker/build/).

- the parser's grammar, shell-word expansion, .dockerignore and the cache key as pure functions;
- builds through the real CLI: every RUN a container, the cache (all hits on a rebuild, a changed
  file invalidates from its step on, --no-cache), multi-stage, --target, COPY --from, heredocs;
- bad input: a clear error with the file and line, nothing left behind (no mount, cgroup,
  snapshot, half image, tag);
- differential (``docker``): the same Dockerfiles built by a private dockerd's legacy builder
  (``DOCKER_BUILDKIT=0 docker build``) from our own busybox: the same config, history and file tree.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import missing_feature

from minidocker.build.cache import cache_key, dir_hash, file_hash
from minidocker.build.context import IgnoreMatcher, read_dockerignore
from minidocker.build.instructions import go_quote, plan
from minidocker.build.parser import DockerfileError, parse
from minidocker.build.shell import ExpansionError, process_word, process_words

pytestmark = [pytest.mark.ch08]

needs_containers = [pytest.mark.root, pytest.mark.overlay]


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


# -- the parser ---------------------------------------------------------------------------------------


def test_continuation_joins_lines_and_skips_comments_and_empty_lines_inside():
    parsed = parse("FROM busybox\nRUN echo a \\\n  # a comment\n\n  b \\\n")
    run = parsed.nodes[1]
    assert (run.instruction, run.args, run.start_line, run.end_line) == ("run", ["echo a   b"], 2, 5)
    assert parsed.warnings and "Empty continuation line found in:" in parsed.warnings[0]


def test_escape_directive_makes_backtick_the_escape_and_backslash_literal():
    parsed = parse("# escape=`\nFROM busybox\nRUN dir C:\\ `\n  /w\nENV P=C:\\path A=a` b\n")
    assert parsed.directives == {"escape": "`"}
    assert parsed.nodes[1].args == ["dir C:\\   /w"]
    assert parsed.nodes[2].args == ["P", "C:\\path", "A", "a` b"]
    assert process_word(parsed.nodes[2].args[3], {}, "`") == "a b"


def test_directives_end_at_the_first_other_line_and_may_not_repeat():
    assert parse("FROM busybox\n# escape=`\n").escape == "\\"
    assert parse("# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM x\n").directives == {
        "syntax": "docker/dockerfile:1", "escape": "`", "check": "skip=all"}
    with pytest.raises(DockerfileError, match=r"Dockerfile:2: only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM x\n")
    with pytest.raises(DockerfileError, match=r"invalid escape token"):
        parse("# escape=x\nFROM x\n")


def test_json_form_falls_back_to_shell_form_when_the_json_is_invalid():
    nodes = parse('CMD ["a", "b"]\nCMD ["a" "b"]\nCMD [\'a\']\nENTRYPOINT ["x"] trailing\nCOPY ["a b", "/c"]\n'
                  'COPY a  b\t/c/\n').nodes
    assert [(n.args, n.json) for n in nodes] == [
        (["a", "b"], True), (['["a" "b"]'], False), (["['a']"], False), (["x"], True),
        (["a b", "/c"], True), (["a", "b", "/c/"], False)]
    with pytest.raises(DockerfileError, match="arrays must be comprised of strings only"):
        parse('RUN ["a", 1]\n')


def test_instructions_are_case_insensitive_and_flags_are_split_off():
    node = parse("copy --from=build --chown=1:2 --link a /b\n").nodes[0]
    assert (node.instruction, node.flags, node.args) == ("copy", ["--from=build", "--chown=1:2", "--link"], ["a", "/b"])
    stages, _ = plan(parse("from busybox as Build\ncopy --from=build --chown=1:2 --link a /b\n"))
    assert stages[0].name == "build"
    assert stages[0].instructions[0].flags == {"from": "build", "chown": "1:2", "link": True}


def test_env_and_label_keep_quotes_for_the_expansion_and_accept_the_old_form():
    nodes = parse('ENV A=1 B="x y" C=a\\ b\nENV OLD  old form  \nLABEL "k 1"=v\n').nodes
    assert nodes[0].args == ["A", "1", "B", '"x y"', "C", "a\\ b"]
    assert nodes[1].args == ["OLD", "old form"]
    assert nodes[2].args == ['"k 1"', "v"]
    with pytest.raises(DockerfileError, match=r"Dockerfile:1: Syntax error - can't find = in \"b\""):
        parse("ENV a=1 b\n")


def test_heredocs_take_the_lines_up_to_their_word():
    text = ("FROM busybox\nRUN <<EOF\necho $A\nEOF\nRUN <<-END cat >/x && <<'RAW' cat\n\tindented\n\tEND\n"
            "keep $A\nRAW\nCOPY <<F1 <<F2 /d/\none\nF1\ntwo\nF2\n")
    nodes = parse(text).nodes
    assert [(d.name, d.content, d.expand, d.chomp) for d in nodes[1].heredocs] == [("EOF", "echo $A\n", True, False)]
    assert [(d.name, d.content, d.expand) for d in nodes[2].heredocs] == [
        ("END", "indented\n", True), ("RAW", "keep $A\n", False)]
    assert [d.content for d in nodes[3].heredocs] == ["one\n", "two\n"]
    assert nodes[3].end_line == 14
    with pytest.raises(DockerfileError, match="Dockerfile:2: unterminated heredoc"):
        parse("FROM x\nRUN <<EOF\nnever ends\n")
    assert parse('RUN ["<<EOF"]\n').nodes[0].heredocs == [], "no heredoc in the exec form"


@pytest.mark.parametrize("text, message", [
    ("FROM busybox\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
    ("RUN true\n", "Dockerfile:1: no build stage in current context"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", "Dockerfile:1: invalid name for build stage"),
    ("FROM busybox\nCOPY a\n", "Dockerfile:2: COPY requires at least two arguments"),
    ("FROM busybox\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
    ("FROM busybox\nSHELL sh -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM busybox\nCOPY --nope=1 a b\n", "Dockerfile:2: Unknown flag: nope"),
    ("FROM busybox\nCOPY --from a b\n", "Dockerfile:2: Missing a value on flag: from"),
    ("FROM x\n\n\nFROM y AS a\nFROM z AS a\n", "Dockerfile:5: duplicate name"),
    ("\n", "Dockerfile: file with no instructions"),
])
def test_bad_dockerfiles_are_refused_with_the_line_and_dockers_wording(text, message):
    with pytest.raises(DockerfileError) as caught:
        plan(parse(text))
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_dockerfile_over_one_mebibyte_is_refused_before_parsing():
    with pytest.raises(DockerfileError, match="more than the limit"):
        parse(b"FROM busybox\n" + b"#" * (1 << 20))


# -- shell-word expansion -----------------------------------------------------------------------------

ENV = {"A": "a", "EMPTY": "", "SP": "x  y"}


@pytest.mark.parametrize("word, expected", [
    ("$A", "a"), ("${A}", "a"), ("$A$A", "aa"), ("${A}b", "ab"), ("$Ab", ""), ("$NOPE", ""),
    ("${NOPE:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${A:-dflt}", "a"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${NOPE:+alt}", ""), ("${NOPE:-$A/x}", "a/x"),
    ("'$A'", "$A"), ('"$A"', "a"), ('"\\$A"', "$A"), ("\\$A", "$A"), ('"a\\b"', "a\\b"), ("a\\ b", "a b"),
    ("$", "$"), ("a$", "a$"), ("$1", ""), ("${SP}", "x  y"), ("end\\", "end"), ('"it\'s"', "it's"),
])
def test_process_word_follows_dockers_rules(word, expected):
    assert process_word(word, ENV) == expected


@pytest.mark.parametrize("word, message", [
    ("'open", "matching single-quote"), ('"open', "matching double-quote"), ("${A:-x", "missing '}'"), ("${A", "missing ':' in substitution"),
    ("${}", "bad substitution"), ("${A-x}", "missing ':' in substitution"), ("${A:=x}", "unsupported modifier"),
    ("${NOPE:?must be set}", "NOPE: must be set"),
])
def test_process_word_errors_name_the_problem(word, message):
    with pytest.raises(ExpansionError, match=message):
        process_word(word, ENV)


def test_process_words_splits_expanded_values_but_not_quoted_ones():
    assert process_words("a 'b c' $SP \"$SP\" d\\ e", ENV) == ["a", "b c", "x", "y", "x  y", "d e"]


def test_go_quote_writes_a_list_as_go_does():
    assert go_quote(["/bin/sh", "-c", 'echo "hi"\n']) == '["/bin/sh" "-c" "echo \\"hi\\"\\n"]'


# -- .dockerignore ------------------------------------------------------------------------------------


@pytest.mark.parametrize("patterns, path, ignored", [
    (["*.o"], "a.o", True), (["*.o"], "d/a.o", False), (["**/*.o"], "d/e/a.o", True), (["**/*.o"], "a.o", True),
    (["d"], "d/e/f", True), (["d/*"], "d", False), (["*.o", "!keep.o"], "keep.o", False),
    (["!keep.o", "*.o"], "keep.o", True), (["/abs"], "abs", True), (["./x/../y"], "y", True),
    (["a?c"], "abc", True), (["a?c"], "a/c", False), (["[a-c]x"], "bx", True), (["**"], "any/thing", True),
    (["d", "!d/keep"], "d/keep", False), (["d", "!d/keep"], "d/other", True),
])
def test_dockerignore_matches_as_docker_does(patterns, path, ignored):
    assert IgnoreMatcher(patterns).matches(path) is ignored


def test_dockerignore_file_is_cleaned_as_the_cli_cleans_it():
    assert read_dockerignore("# comment\n\n  *.o  \n!  keep.o\n/root/../x\n") == ["*.o", "!keep.o", "x"]


# -- the cache key ------------------------------------------------------------------------------------


def test_file_hash_covers_mode_owner_and_contents_but_not_mtime(tmp_path):
    path = tmp_path / "f"
    path.write_text("one")
    first = file_hash(path, "f")
    os.utime(path, (1, 1))
    assert file_hash(path, "f") == first, "mtime is not part of the checksum"
    os.chmod(path, 0o600)
    assert file_hash(path, "f") != first, "the mode is"
    os.chmod(path, 0o644)
    assert file_hash(path, "f") == first
    assert file_hash(path, "f", uid=1) != first, "the owner is"
    path.write_text("two")
    assert file_hash(path, "f") != first, "the contents are"
    header = b"namefmode420uid0gid0size3typeflag0linkname" + b"uname" + b"gname" + b"devmajor0devminor0"
    assert file_hash(path, "f") == hashlib.sha256(header + b"two").hexdigest(), "tarsum v1's fields, in order"
    assert dir_hash(["b", "a"]) == hashlib.sha256(b"a,b").hexdigest()


def test_cache_key_changes_with_the_parent_and_the_step():
    config = {"Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=1"], "Env": ["A=1"]}
    key = cache_key("sha256:" + "1" * 64, config)
    assert key == cache_key("sha256:" + "1" * 64, dict(reversed(list(config.items()))))
    assert key != cache_key("sha256:" + "2" * 64, config)
    assert key != cache_key("sha256:" + "1" * 64, {**config, "Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=2"]})


# -- builds through the CLI -------------------------------------------------------------------------------


def _lines(result, prefix: str) -> list[str]:
    return [line for line in result.out.splitlines() if line.startswith(prefix)]


def _leftovers(state_root: Path) -> list[str]:
    builds = state_root / "lib" / "builds"
    return sorted(os.listdir(builds)) if builds.is_dir() else []


def _image_count(state_root: Path) -> int:
    imagedb = state_root / "lib" / "images" / "imagedb"
    return len(os.listdir(imagedb)) if imagedb.is_dir() else 0


@pytest.mark.root
@pytest.mark.overlay
def test_a_rebuild_is_all_cache_hits_and_a_changed_file_invalidates_from_its_step_on(cli, tmp_path):
    context = _write(tmp_path, {"a.txt": "one\n", "b.txt": "b\n", "Dockerfile": (
        "FROM busybox\nENV A=1\nCOPY b.txt /b\nRUN echo $A > /env\nCOPY a.txt /a\nRUN cat /a /env > /both\n")})
    untagged = cli("images").out.count("<none>")   # other tests' untagged builds, if any
    first = cli("build", "-t", "minidocker-test/cache:1", str(context))
    assert first.code == 0, first
    assert len(_lines(first, " ---> Using cache")) == 0, first
    again = cli("build", "-t", "minidocker-test/cache:1", str(context))
    assert again.code == 0, again
    assert len(_lines(again, " ---> Using cache")) == 5, again
    assert again.out.splitlines()[-2] == first.out.splitlines()[-2], f"the same image ID\n{first}\n{again}"
    (context / "a.txt").write_text("two\n")
    changed = cli("build", "-t", "minidocker-test/cache:2", str(context))
    assert changed.code == 0, changed
    out = changed.out.split("Step 5/6")
    assert out[0].count("Using cache") == 3 and "Using cache" not in out[1], changed
    run = cli("run", "--rm", "minidocker-test/cache:2", "cat", "/both")
    assert run.out == "two\n1\n", run
    os.utime(context / "b.txt", (1, 1))
    touched = cli("build", "-t", "minidocker-test/cache:2", str(context))
    assert len(_lines(touched, " ---> Using cache")) == 5, f"an mtime alone does not invalidate\n{touched}"
    fresh = cli("build", "--no-cache", "-t", "minidocker-test/cache:3", str(context))
    assert fresh.code == 0 and not _lines(fresh, " ---> Using cache"), fresh
    listed = cli("images")
    assert listed.out.count("<none>") == untagged, f"intermediate images are hidden\n{listed}"
    for tag in ("1", "2", "3"):
        assert cli("rmi", f"minidocker-test/cache:{tag}").code == 0
    listed = cli("images")
    assert listed.out.count("<none>") == untagged, f"rmi removed the intermediate images no one else uses\n{listed}"


@pytest.mark.root
@pytest.mark.overlay
def test_multistage_builds_only_what_the_target_needs(cli, tmp_path):
    context = _write(tmp_path, {"Dockerfile": (
        "FROM busybox AS base\nRUN echo base > /base\n"
        "FROM busybox AS broken\nRUN exit 9\n"
        "FROM base AS tool\nRUN echo tool > /tool\n"
        "FROM scratch AS final\nCOPY --from=tool /tool /base /\nCOPY --from=busybox /bin/busybox /bin/cat\n")})
    result = cli("build", "-t", "minidocker-test/multi", str(context))
    assert result.code == 0, result
    assert "exit 9" not in result.out, "the stage nobody needs is skipped"
    shown = cli("run", "--rm", "--entrypoint", "/bin/cat", "minidocker-test/multi", "/tool", "/base")
    assert shown.out == "tool\nbase\n", shown
    history = cli("history", "minidocker-test/multi")
    assert len(history.out.strip().splitlines()) == 3, history
    target = cli("build", "--target", "tool", "-t", "minidocker-test/multi:tool", str(context))
    assert target.code == 0, target
    assert "Step " in target.out and "COPY --from" not in target.out
    missing = cli("build", "--target", "nope", str(context))
    assert missing.code != 0 and "failed to reach build target nope" in missing.err, missing
    for tag in ("minidocker-test/multi", "minidocker-test/multi:tool"):
        cli("rmi", tag)


@pytest.mark.root
@pytest.mark.overlay
def test_heredocs_onbuild_add_and_dockerignore(cli, tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("inside/t.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"tar"))
    context = _write(tmp_path, {
        "files.tgz": archive.getvalue(), "keep.log": "kept\n", "drop.log": "dropped\n", ".dockerignore": "*.log\n!keep.log\n",
        "Dockerfile": ("FROM busybox\nENV WHO=world\nRUN <<EOF\necho \"hello $WHO\" > /greeting\nEOF\n"
                       "COPY <<-EOT /etc/motd\n\thi $WHO\n\tEOT\nCOPY <<'RAW' /raw\n$WHO\nRAW\n"
                       "ADD files.tgz /x/\nCOPY *.log /logs/\nONBUILD RUN echo triggered > /trigger\n")})
    result = cli("build", "-t", "minidocker-test/heredoc", str(context))
    assert result.code == 0, result
    shown = cli("run", "--rm", "minidocker-test/heredoc", "sh", "-c",
                "cat /greeting /etc/motd /raw /x/inside/t.txt; echo; ls /logs")
    assert shown.out == "hello world\nhi world\n$WHO\ntar\nkeep.log\n", shown
    child = _write(tmp_path / "child", {"Dockerfile": "FROM minidocker-test/heredoc\nRUN cat /trigger\n"})
    built = cli("build", "-t", "minidocker-test/child", str(child))
    assert built.code == 0 and "# Executing 1 build trigger" in built.out and "triggered" in built.out, built
    for tag in ("minidocker-test/child", "minidocker-test/heredoc"):
        cli("rmi", tag)


@pytest.mark.root
@pytest.mark.overlay
def test_an_ignored_dockerfile_is_still_read_but_not_copied(cli, tmp_path):
    context = _write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY . /ctx\n", ".dockerignore": "Dockerfile\n.dockerignore\n",
                                "kept.txt": "kept\n", "sub/deep.txt": "deep\n"})
    built = cli("build", "-t", "minidocker-test/ignored", str(context))
    assert built.code == 0, built
    shown = cli("run", "--rm", "minidocker-test/ignored", "find", "/ctx")
    assert sorted(shown.out.split()) == ["/ctx", "/ctx/kept.txt", "/ctx/sub", "/ctx/sub/deep.txt"], shown
    cli("rmi", "minidocker-test/ignored")


@pytest.mark.root
@pytest.mark.overlay
def test_stdin_dockerfile_and_tar_context_quiet_and_iidfile(cli, tmp_path):
    plain = cli("build", "-q", "-", input=b"FROM busybox\nLABEL from=stdin\n")
    assert plain.code == 0 and plain.out.startswith("sha256:") and len(plain.out.strip()) == 71, plain
    assert cli("rmi", plain.out.strip()).code == 0
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY f /f\n"), ("f", b"from the tar\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    iid = tmp_path / "iid"
    from_tar = cli("build", "--iidfile", str(iid), "-t", "minidocker-test/tar", "-", input=archive.getvalue())
    assert from_tar.code == 0, from_tar
    assert iid.read_text().startswith("sha256:")
    assert cli("run", "--rm", "minidocker-test/tar", "cat", "/f").out == "from the tar\n"
    _write(tmp_path / "ctx", {"g": "g\n"})
    with_file = cli("build", "-f", "-", "-t", "minidocker-test/tar", str(tmp_path / "ctx"),
                    input=b"FROM busybox\nCOPY g /g\n")
    assert with_file.code == 0, with_file
    cli("rmi", "minidocker-test/tar")


@pytest.mark.root
@pytest.mark.overlay
def test_a_failing_run_shows_its_code_and_leaves_nothing(cli, state_root, tmp_path):
    context = _write(tmp_path, {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo before the end; exit 3\n"})
    result = cli("build", "-t", "minidocker-test/fails", str(context))
    assert result.code == 3, result
    assert "before the end" in result.out
    assert "The command '/bin/sh -c echo before the end; exit 3' returned a non-zero code: 3" in result.err
    quiet = cli("build", "-q", "-t", "minidocker-test/fails", str(context))
    assert quiet.code == 3 and "its last lines of output:\nbefore the end" in quiet.err, quiet
    assert cli("images").out.count("minidocker-test/fails") == 0, "no name for a half-built image"
    assert _leftovers(state_root) == [], "no container filesystem left"


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.parametrize("when", [b"started\n", b"Step 2/2 : RUN echo started; sleep 30\n"],
                         ids=["while-the-command-runs", "while-the-container-is-set-up"])
def test_ctrl_c_during_a_run_removes_the_steps_container(state_root, tmp_path, when):
    import signal
    import sys
    import time

    from conftest import REPO

    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    subprocess.run([sys.executable, "-m", "minidocker", "history", "busybox"], env=env, cwd=REPO,
                   capture_output=True, check=True)   # the built-in image exists before we count
    context = _write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo started; sleep 30\n"})
    before = _image_count(state_root)
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "build", "--no-cache", str(context)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, start_new_session=True,
                            env=env)
    try:
        line = b""
        deadline = time.monotonic() + 30
        while line != when and time.monotonic() < deadline:
            line = proc.stdout.readline()
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130, proc.stderr.read()
    assert _leftovers(state_root) == []
    assert _image_count(state_root) == before, "no image of the interrupted step"


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.parametrize("dockerfile, files, message", [
    ("FROM busybox\nCOPY ../secret /s\n", {}, "forbidden path outside the build context: ../secret"),
    ("FROM busybox\nCOPY link/passwd /s\n", {"link": "/etc"}, "forbidden path outside the build context"),
    ("FROM busybox\nCOPY nothing /s\n", {}, "file not found in build context or excluded by .dockerignore"),
    ("FROM busybox\nCOPY --from=127.0.0.1:15599/nowhere /x /y\n", {}, "Dockerfile:2: failed to connect to"),
    ("FROM busybox AS a\nCOPY --from=a /x /y\n", {}, "Dockerfile:2: circular dependency detected on stage: a"),
    ("FROM 127.0.0.1:15599/no-such-image\n", {}, "Dockerfile:1: failed to connect to"),   # nothing listens there
    ("FROM busybox\nADD http://example.com/x /x\n", {}, "remote sources are not supported offline"),
    ("FROM busybox\nRUN echo ${A\n", {}, None),
    ("FROM busybox\nENV A=${B\n", {}, "Dockerfile:2: failed to process"),
    ("FROM busybox\nBOGUS\n", {}, "Dockerfile:2: unknown instruction: BOGUS"),
    ("FROM --platform=linux/s390x 127.0.0.1:15599/other-arch\n", {}, "Dockerfile:1: failed to connect to"),
    ("FROM busybox\nCOPY --chown=nosuch f /f\n", {"f": "f"}, "can't find uid for user nosuch"),
])
def test_bad_input_is_a_clear_error_and_leaves_nothing(cli, state_root, tmp_path, dockerfile, files, message):
    context = tmp_path / "context"
    context.mkdir()
    for name, value in files.items():
        if name == "link":
            os.symlink(value, context / name)
        else:
            (context / name).write_text(value)
    (context / "Dockerfile").write_text(dockerfile)
    result = cli("build", "-t", "minidocker-test/bad", str(context))
    if message is None:   # a shell error: the shell reports it, the build fails with its code
        assert result.code == 2, result
    else:
        assert result.code != 0 and message in result.err, result
    assert "minidocker-test/bad" not in cli("images").out
    assert _leftovers(state_root) == []


@pytest.mark.root
@pytest.mark.overlay
def test_run_mounts_platform_args_chmod_and_unused_build_args(cli, tmp_path):
    context = _write(tmp_path, {"data.txt": "from the context\n", "Dockerfile": (
        "FROM busybox\n"
        "ARG TARGETARCH\n"
        "RUN --mount=type=cache,target=/cache echo run >> /cache/log && cat /cache/log > /seen\n"
        "RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cat /mnt/data.txt > /bound\n"
        "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && echo $TARGETARCH > /arch\n"
        "COPY --chmod=0700 --chown=7:8 data.txt /private\n")})
    first = cli("build", "--build-arg", "UNUSED=1", "-t", "minidocker-test/mounts", str(context))
    assert first.code == 0, first
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in first.out
    again = cli("build", "--no-cache", "-t", "minidocker-test/mounts", str(context))
    assert again.code == 0, again
    shown = cli("run", "--rm", "minidocker-test/mounts", "sh", "-c",
                "cat /seen /bound /arch; ls /scratch /cache 2>&1; stat -c '%a %u %g' /private")
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assert shown.out.splitlines() == ["run", "run", "from the context", machine,
                                      "ls: /scratch: No such file or directory",
                                      "ls: /cache: No such file or directory", "700 7 8"], shown
    cli("rmi", "minidocker-test/mounts")


@pytest.mark.root
@pytest.mark.overlay
def test_a_context_tar_with_an_unsafe_name_is_refused(cli, state_root, tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("../escaped", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = cli("build", "-", input=archive.getvalue())
    assert result.code == 1 and "escaped" in result.err, result
    assert not (state_root / "lib" / "images" / "escaped").exists()
    assert not any(p.name == "escaped" for p in (state_root / "lib" / "images" / "tmp").rglob("*")) \
        if (state_root / "lib" / "images" / "tmp").exists() else True


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.netns
def test_run_on_the_bridge_gets_an_address_and_commits_no_name_files(tmp_path):
    """In chapter 09's network sandbox (its own netns and state root): RUN is wired to the default
    bridge like ``run``; the /etc/hosts, hostname and resolv.conf bound over it stay out of the layer."""
    from minidocker.coursenet import Sandbox

    context = _write(tmp_path / "context", {"Dockerfile": (
        "FROM busybox\nRUN ip -4 addr show eth0 | grep -q 'inet 10\\.' && grep -q $(hostname) /etc/hosts\n"
        "RUN touch /made\n")})
    box = Sandbox(tmp_path / "state")
    try:
        built = box.md("build", "--network", "bridge", "-t", "minidocker-test/bridge", str(context))
        assert built.returncode == 0, built.stdout + built.stderr
        shown = box.md("run", "--rm", "--network", "none", "minidocker-test/bridge", "ls", "/etc")
        assert shown.stdout.split() == ["group", "passwd"], shown.stdout + shown.stderr
        assert box.md("rmi", "minidocker-test/bridge").returncode == 0
        assert box.md("system", "prune", "-f").returncode == 0
        assert box.wait_clean(allow_networks=False) == []
    finally:
        box.close()


# -- differential: the same Dockerfiles through dockerd's legacy builder ------------------------------

CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal",
               "Healthcheck", "OnBuild", "Shell")

CONTEXT = {
    "a.txt": "hello\n",
    "b1.txt": "b one\n",
    "b2.txt": "b two\n",
    "d/e/f": "deep\n",
    "d/top": "top\n",
    "skip.log": "ignored\n",
    "d/skip.log": "ignored too\n",
    ".dockerignore": "*.log\n**/*.log\n",
}

DOCKERFILES = {
    "instructions": """\
FROM busybox
ENV A=1 B="x y" C=$A
ENV OLD old form value
ARG V=3
ARG W
LABEL k=v "with space"="a b" l=${A}
MAINTAINER someone
RUN echo hi $V $W > /f && rm -rf /etc/group && mkdir -p /a/b && echo x > /a/b/c
RUN rm -rf /a && mkdir /a && echo y > /a/new
COPY a.txt /x/
COPY d /dd
COPY d/ /ee/
COPY a.txt b* /multi/
COPY a.txt rel
WORKDIR /w
WORKDIR sub
COPY a.txt .
USER 1000:1000
EXPOSE 80 53/udp 8000-8002
VOLUME /data
VOLUME ["/v2", "/v3"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD true
ONBUILD RUN echo trig
ENTRYPOINT ["/bin/sh", "-c"]
CMD echo hello
""",
    "parser": """\
# escape=`
FROM busybox
RUN echo a `
  # a comment inside

  b > /cont
ENV P=C:\\path Q=a` b
COPY ["a.txt", "/json dest/"]
cmd ["not json
run ["sh", "-c", "echo exec $HOME > /exec"]
RUN echo $HOME ${A:-dflt} > /shell
ENV A=x
ENV B=${A:-d} C=${Z:-d} D=${A:+p} E=${Z:+p} F=`$A G='$A' H="$A"
LABEL esc=a` b
SHELL ["/bin/sh", "-ec"]
RUN echo shell > /sh
""",
    "multistage": """\
FROM busybox AS build
RUN mkdir /out && echo built > /out/artifact && ln -s artifact /out/link
FROM busybox AS other
RUN echo other > /o
FROM scratch
COPY --from=build /out /
COPY --from=0 /bin/busybox /bin/
COPY --from=other /o /from-other
""",
    "args": """\
ARG BASE=busybox
ARG GLOBAL=g
FROM $BASE
ARG GLOBAL
ARG LOCAL=l
ENV E1=$GLOBAL E2=$LOCAL
RUN echo $GLOBAL $LOCAL > /args
""",
    "users": """\
FROM busybox
RUN mkdir -p /home/u && chown 65534:65534 /home/u
COPY --chown=nobody:nobody a.txt /home/u/
COPY --chown=1234 d /owned
USER nobody
WORKDIR /home/u
RUN touch /tmp/by-nobody && echo $HOME > /tmp/home
""",
    "add": """\
FROM busybox
ADD a.txt /added
ADD files.tgz /unpacked/
ADD plain.tar /plain/
ADD d /added-dir/
""",
}
BUILD_ARGS = {"args": ["--build-arg", "LOCAL=over"]}


def _tar_bytes(compress: str = "") -> bytes:
    """A small tar (a directory, a file, a symlink) for ADD's unpacking."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compress}") as tar:
        for name, kind, data in (("inside", tarfile.DIRTYPE, b""), ("inside/t.txt", tarfile.REGTYPE, b"tar\n"),
                                 ("inside/l", tarfile.SYMTYPE, b"t.txt")):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644, 1_600_000_000
            if kind == tarfile.SYMTYPE:
                info.linkname = data.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def _archive_image(path: Path) -> tuple[dict, dict]:
    """The config and merged file tree of the one image in a ``docker save`` archive."""
    tree: dict[str, tuple] = {}
    with tarfile.open(path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))[0]
        config = json.load(archive.extractfile(manifest["Config"]))
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=archive.extractfile(layer)) as tar:
                for member in tar:
                    name = member.name.removeprefix("./").rstrip("/")
                    parent, _, base = name.rpartition("/")
                    if base == ".wh..wh..opq":
                        for key in [k for k in tree if k.startswith(parent + "/")]:
                            del tree[key]
                        continue
                    if base.startswith(".wh."):
                        gone = f"{parent}/{base[4:]}" if parent else base[4:]
                        for key in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                            del tree[key]
                        continue
                    if name in ("", "."):
                        continue
                    if member.isfile():
                        content = ("file", hashlib.sha256(tar.extractfile(member).read()).hexdigest()[:16])
                    elif member.islnk():
                        content = ("file", tree.get(member.linkname.removeprefix("./"), (0,) * 6)[5])
                    elif member.issym():
                        content = ("symlink", member.linkname)
                    elif member.isdir():
                        content = ("dir", "")
                    else:
                        content = ("other", str(member.type))
                    tree[name] = (content[0], oct(member.mode & 0o7777), member.uid, member.gid, name, content[1])
    return config, tree


def _normal_config(config: dict) -> dict:
    return {k: config[k] for k in CONFIG_KEYS if config.get(k) not in (None, [], {}, "")}


def _history(config: dict) -> list[tuple[str, bool]]:
    """(created_by, empty_layer) of each entry: COPY's checksums included, they are the same as dockerd's."""
    return [(h.get("created_by", ""), bool(h.get("empty_layer"))) for h in config.get("history", [])]


@pytest.fixture(scope="module")
def docker_busybox(cli, tmp_path_factory):
    """A private dockerd (tests/dockerd.py) of this module's own, with our busybox loaded into it.

    Not the session's ``dockerd``: its builds run containers, kept apart from the other tests'.
    Anything left behind fails the module (``stop()`` knows dockerd's own data-root mount).
    """
    from dockerd import Dockerd, DockerdUnavailable

    try:
        daemon = Dockerd()
    except DockerdUnavailable as e:
        missing_feature(str(e))
    try:
        archive = tmp_path_factory.mktemp("busybox") / "busybox.tar"
        result = cli("save", "-o", str(archive), "busybox")
        assert result.code == 0, result
        daemon.docker("load", "-i", str(archive))
        yield daemon
    finally:
        forced = daemon.stop()
        if forced:
            pytest.fail("the private dockerd left these behind (removed now):\n  " + "\n  ".join(forced))


@pytest.fixture(scope="module")
def cli(state_root):   # module scope for the fixture above; the same command line as conftest's
    import sys

    from conftest import REPO, Result

    def run(*args: str, input: bytes | None = None, cwd: str | None = None, timeout: float = 120):
        proc = subprocess.run([sys.executable, "-m", "minidocker", *args], input=input, capture_output=True,
                              timeout=timeout, env={**os.environ, "MINIDOCKER_ROOT": str(state_root),
                                                    "PYTHONPATH": str(REPO)}, cwd=cwd or REPO)
        return Result(list(args), proc.returncode, proc.stdout.decode(errors="replace"),
                      proc.stderr.decode(errors="replace"))

    return run


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_we_build_what_dockers_legacy_builder_builds(name, docker_busybox, cli, tmp_path):
    context = _write(tmp_path / "context", {**CONTEXT, "Dockerfile": DOCKERFILES[name], "files.tgz": _tar_bytes("gz"),
                                            "plain.tar": _tar_bytes()})
    os.symlink("top", context / "d" / "link")          # a symlink in a copied directory (kept as one)
    tag = f"minidocker-test/ch08-{name}:latest"
    extra = BUILD_ARGS.get(name, [])
    ours = cli("build", "-t", tag, *extra, str(context))
    assert ours.code == 0, ours
    env = {**docker_busybox.env, "DOCKER_BUILDKIT": "0"}
    theirs = subprocess.run(["docker", "build", "--network", "none", "-t", tag, *extra, str(context)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    assert cli("save", "-o", str(tmp_path / "ours.tar"), tag).code == 0
    docker_busybox.docker("save", "-o", str(tmp_path / "theirs.tar"), tag)
    docker_busybox.docker("rmi", tag)
    assert cli("rmi", tag).code == 0
    our_config, our_tree = _archive_image(tmp_path / "ours.tar")
    their_config, their_tree = _archive_image(tmp_path / "theirs.tar")
    assert _normal_config(our_config["config"]) == _normal_config(their_config["config"])
    assert _history(our_config) == _history(their_config)
    assert len(our_config["rootfs"]["diff_ids"]) == len(their_config["rootfs"]["diff_ids"])
    missing = sorted(set(their_tree) - set(our_tree))
    extra_files = sorted(set(our_tree) - set(their_tree))
    different = sorted(k for k in set(our_tree) & set(their_tree) if our_tree[k] != their_tree[k])
    assert (missing, extra_files, [(our_tree[k], their_tree[k]) for k in different]) == ([], [], [])
    import re

    def step_lines(text: str) -> list[str]:
        return [line if line.startswith("Step ") else line[:17]
                for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()
                if line.startswith(("Step ", " ---> Running in"))]

    assert step_lines(ours.out) == step_lines(theirs.stdout), theirs.stdout
