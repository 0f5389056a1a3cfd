"""Engine events beyond one host: a Redis Streams bus (see :mod:`ttxt_mp.bus.format`)."""
