"""Building images from a Dockerfile, like Docker's legacy builder. Chapter 08.

    parse(text) -> Parsed                       grammar: directives, continuations, heredocs   parser.py
    process_word("${A:-x}", env)                Docker's shell-word expansion                  shell.py
    plan(parsed) -> stages, meta ARGs           instructions checked, split into stages        instructions.py
    BuildContext, IgnoreMatcher                 the context directory or tar, .dockerignore    context.py
    BuildCache, cache_key, file_hash            the cache, keyed like Docker's                 cache.py
    build(context, BuildOptions, on_event)      every step: a container, its diff a layer      builder.py

The builder is a library: ``build`` takes a context (a directory or a tar stream) and
reports progress as events (dicts like the Engine API's ``/build`` stream: ``{"stream":
"Step 1/3 : FROM busybox\\n"}``); the CLI prints them.
"""

__all__ = ["BuildOptions", "BuildResult", "build"]


def __getattr__(name: str):
    if name in __all__:
        from minidocker.build import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'minidocker.build' has no attribute {name!r}")
