//! The waiting-room pages (gateway::page): HTML for browsers, with and without JavaScript.

use super::*;

operation! {
    get "/e/{event_id}" => room_page, "roomPage", tag "pages", public, "The waiting-room page of an event", [description = "One self-contained HTML document (inline CSS and JavaScript, no external\nresources but the logo) in the event's brand (its page settings) and the\nbuyer's language (?lang=, else Accept-Language by q-value; en, de, fr, es,\nit, pt-BR, ja, ko, zh-CN, ar right to left). It keeps a random session id\nin localStorage, joins the queue, follows the place over /api/v1/queue/ws\n(reconnecting with backoff; after 3 failed socket attempts it also polls\nstatus every 5 s), calls enter on ADMISSION_READY and redirects to the\nevent's target_url with `reservation_token=<JWT>` appended as a query\nparameter (`&` when target_url already has a `?`). Without a target_url it\nshows that the user is in. States: pre-queue, waiting, draw (queueing_method\nrandom), paused, sold out, closed (QUEUE_CLOSED), expired (with a \"join\nagain\" button). The event's settings are what this replica read of them at\nmost a second ago (at once after a PUT on this replica): serving the page\nis no Redis operation.\n\nWithout JavaScript a <noscript> view offers a join form (POST\n/e/{event_id}/join); with the wr_token cookie that form sets, the page reads\nthe place server-side on every load (a heartbeat, like status), shows it and\nreloads itself (meta refresh every idle_timeout_seconds / 3 seconds, 1 to\n20); while it waits, the wr_hint cookie keeps the answer's poll_hint, so a\nreload is read as a hinted status read (mostly without Redis). When READY a\nform posts to /e/{event_id}/enter.\n\nEvery answer carries Cache-Control: no-store, X-Content-Type-Options:\nnosniff, Referrer-Policy: no-referrer, Vary: accept-language and a\nContent-Security-Policy whose script-src is a nonce new for every response,\nwith no framing.\n", params(("event_id" = String, Path, description = "The event; an invalid id gets the 404 page."), ("lang" = Option<String>, Query, description = "The page's language, overriding Accept-Language: en, de, fr, es, it, pt-BR, ja, ko, zh-CN or ar (case-insensitive; de-AT, pt, zh and the like match by their language). An unknown value is ignored."), RequestId)],
    200 => html[("Cache-Control" = String), ("Content-Security-Policy" = String, description = "default-src 'none'; script-src 'nonce-<random per response>'; worker-src blob:; style-src 'unsafe-inline'; img-src 'self' data: [the logo's origin]; connect-src 'self'; base-uri 'none'; form-action 'self' [the target_url's origin]; frame-ancestors 'none'"), ("Referrer-Policy" = String), ("Vary" = String)]("The waiting-room page."),
    404 => html("No such event (or an invalid id); an HTML \"Not found\" page."),
    500 => html("An internal error reading the event; an HTML \"Something went wrong\" page, without Retry-After."),
    503 => html[("Retry-After" = i64, description = "Seconds to wait before reloading.")]("The store cannot be read (an HTML \"Please wait\" page, Retry-After: 5), or MAINTENANCE_MODE is in force (an HTML maintenance page that reloads itself, Retry-After: 30)."),
    405 => MethodNotAllowed,
}

operation! {
    get "/" => index, "index", tag "pages", public, "A short HTML index", [description = "Points to /api/v1 and /e/<event_id>; links /e/demo when an event `demo`\nexists (as with the embedded in-memory store). Same headers as the\nwaiting-room page.\n", params(RequestId)],
    200 => html("The index page."),
    405 => MethodNotAllowed,
}

operation! {
    get "/favicon.ico" => favicon, "favicon", tag "pages", public, "The pages' icon", [description = "The icon every page also carries inline (a data: URL), so that a browser asking for /favicon.ico gets one.", params(RequestId)],
    200 => echoed[("Cache-Control" = String, description = "public, max-age=86400")](description = "An SVG icon, cached for a day.", content_type = "image/svg+xml", body = String),
    405 => MethodNotAllowed,
}

pub mod nojs {
    use super::*;

    operation! {
        post "/e/{event_id}/join" => join, "roomPageJoin", tag "pages", public, "Join from the waiting-room page without JavaScript (form post)", [description = "The no-JS join form's target; no body is read. Joins with the wr_session\ncookie's session id (or a new random one), under the same per-address join\nrate limit as POST /api/v1/queue/join, keeps the waiting token in the\nwr_token cookie and redirects to the page, which then shows the place.\nBoth cookies: Path=/e/{event_id}; HttpOnly; SameSite=Lax (plus Secure when\nthe request came with X-Forwarded-Proto: https), ending with the browser\nsession. Refusals answer the page (HTML) with the error's status and what\nit means; an event with a join_challenge cannot be joined without\nJavaScript.\n", params(("event_id" = String, Path, description = "The event; an invalid id gets the 404 page."), ("lang" = Option<String>, Query, description = "As for GET /e/{event_id}; kept in the redirect."), RequestId)],
        303 => echoed[("Location" = String, description = "/e/{event_id}, with ?lang= when the request had a known one."), ("Set-Cookie" = String, description = "wr_token=<waiting token> and wr_session=<session id> (two headers)."), ("Cache-Control" = String)](description = "Joined, or the session's standing place found: back to the page."),
        403 => html("The event has a join_challenge (the page says that it needs JavaScript), or its queueing_method is reject (QUEUE_CLOSED: the page says the queue is closed)."),
        404 => html("No such event (or an invalid id); the HTML \"Not found\" page."),
        410 => html("The event is sold out (EVENT_CLOSED); the page says so."),
        500 => html("An internal error; the HTML \"Something went wrong\" page."),
        503 => html[("Retry-After" = i64, description = "Seconds to wait before trying again.")]("The store is unavailable (the page with \"Please wait\" and the join button again; Retry-After kept), or MAINTENANCE_MODE is in force (the maintenance page, Retry-After: 30)."),
        405 => MethodNotAllowed, 429 => RateLimited,
    }

    operation! {
        post "/e/{event_id}/enter" => enter, "roomPageEnter", tag "pages", public, "Enter from the waiting-room page without JavaScript (form post)", [description = "The no-JS enter form's target; no body is read. Takes the admission of\nthe wr_token cookie's place (READY, or already ADMITTED) and redirects to the\nevent's target_url with `reservation_token=<JWT>` appended, as the script\ndoes; without a target_url, a page saying until when the admission holds.\nWithout the cookie, or when enter is refused (not ready yet, expired, sold\nout), back to the page, which shows where the place stands.\n", params(("event_id" = String, Path, description = "The event of the page."), ("lang" = Option<String>, Query, description = "As for GET /e/{event_id}; kept in the redirect."), RequestId)],
        303 => echoed[("Location" = String, description = "target_url?...reservation_token=<JWT>, or /e/{event_id} (with ?lang= when the request had a known one)."), ("Cache-Control" = String)](description = "Admitted: to target_url with reservation_token appended; otherwise back to the page."),
        200 => html("Admitted, and the event has no target_url: an HTML page saying until when the admission holds."),
        404 => html("The event is gone since the admission; the HTML \"Not found\" page."),
        500 => html("An internal error reading the event; the HTML \"Something went wrong\" page."),
        503 => html[("Retry-After" = i64, description = "Seconds to wait before trying again.")]("The store cannot be read after the admission was taken (the HTML \"Please wait\" page; posting again answers the same admission), or MAINTENANCE_MODE is in force (the maintenance page, Retry-After: 30)."),
        405 => MethodNotAllowed,
    }
}
