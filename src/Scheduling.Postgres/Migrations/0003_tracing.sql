-- W3C trace context of the enqueue, so processing continues the producer's trace.
ALTER TABLE {schema}.jobs
    ADD COLUMN trace_parent text,
    ADD COLUMN trace_state  text;
