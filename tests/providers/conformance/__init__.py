"""One set of cases run over every provider adapter; how to add an adapter is in
``README.md`` here."""
