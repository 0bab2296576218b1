-- One URL, optionally revalidated: WRK_IF_NONE_MATCH is sent as If-None-Match.
local etag = os.getenv("WRK_IF_NONE_MATCH")
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end
