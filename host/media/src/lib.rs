//! Media legs for BYOC: RTMP and WHIP ingest, RTMP and WHEP egress, MPEG-TS segmenting.
