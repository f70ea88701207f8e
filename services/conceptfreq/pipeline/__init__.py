"""How a shard moves through the stages, whichever way they run.

- `announce`: plan which shards to publish, record them in the ledger, publish their events;
- `stages`: the skeleton every stage's bus handler shares (parser, tagger);
- `counting`: what the counter does once a shard's stages are done (matched counts, totals, `counted`);
- `progress`: where a shard stands as a whole, from its ledger rows;
- `run`: run the stages: on this machine (`count_shards`, embedded `ingest`) or by waiting for a cluster;
- `vocabularies`: vocabularies and their built matchers, cached per process;
- `config`: typed configuration, built once from the command line.

Every path leaves the same ledger rows, so `status` reads them all the same way."""
