"""The engine: images + containers + the runtime, put together. Chapter 13 makes it a daemon.

For now it runs in the CLI's own process ("direct mode", no daemon):

    run_container(RunOptions(...)) -> ExitStatus     ``docker run``       run.py
    Container, find_container, list_containers       state on disk        container.py
"""
