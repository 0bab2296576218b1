-- Requests with headers from the environment: WRK_AUTHORIZATION (a bearer token), WRK_IF_NONE_MATCH.
local token = os.getenv("WRK_AUTHORIZATION")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local etag = os.getenv("WRK_IF_NONE_MATCH")
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end
