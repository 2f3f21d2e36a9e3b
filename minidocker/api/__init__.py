"""The Engine API: minidockerd's HTTP server and its handlers, split by noun, as dockerd's
api/server/router/ is (container, image, network, volume, system, build).

    server.py      HTTP/1.1 on a unix socket (and mutual-TLS TCP): keep-alive, chunked bodies, the hijack,
                   limits
    openapi.yaml   the subset served, as OpenAPI 3.0 (tests/test_ch14_contract.py keeps it true)
    router.py      routes with and without /vX.Y, version checks, 404 "page not found"
    errors.py      the one table: NotFound 404, Conflict 409, InvalidArgument 400, else 500
    daemon.py      the daemon process: config, pidfile, socket, signals, serve
    system.py      /_ping /version /info /events
    containers.py  /containers/...
    exec.py        /containers/{id}/exec, /exec/{id}/start|resize|json
    archive.py     /containers/{id}/archive|changes|export, /commit: a container's files

Handlers validate, call the engine, shape Docker's JSON; they never touch the kernel.
"""
