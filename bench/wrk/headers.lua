-- One URL, optionally revalidated: WRK_IF_NONE_MATCH is sent as If-None-Match, WRK_ACCEPT_ENCODING as
-- Accept-Encoding.
local etag = os.getenv("WRK_IF_NONE_MATCH")
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end
local encodings = os.getenv("WRK_ACCEPT_ENCODING")
if encodings and encodings ~= "" then wrk.headers["Accept-Encoding"] = encodings end
