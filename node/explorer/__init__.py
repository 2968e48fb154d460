"""The block explorer: server-rendered pages in English and Chinese over a node's
public JSON-RPC and WebSocket API (``pages``), served by every node at ``/explorer/``
and by ``agora explorer --node URL`` (``server``); ``words`` says what values mean,
``i18n`` and ``catalog`` give the languages, ``source`` is where the pages read."""
