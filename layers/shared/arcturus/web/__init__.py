"""The web adapter: everything that knows about HTTP and Powertools' event handler.

- ``resolver``: the resolver every function builds, its exception handlers and the Lambda entry point;
- ``answers``: the one table from a domain exception to a status, title and headers;
- ``problem``: RFC 9457 problem JSON;
- ``guards``: route middlewares, ``requires(permission)`` and ``limited(rule)``, and the caller they resolve;
- ``docs``: what a route declares for the OpenAPI document;
- ``encoder``: ``to_json``, the one encoder of every answer's body;
- ``responses``: JSON answers with a status or headers of their own; ``cached``: with ``X-Cache``.

Domain modules (``arcturus.*`` outside this package) never import it; it imports them.
"""
