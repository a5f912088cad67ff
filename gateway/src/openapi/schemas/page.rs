//! Schemas of the waiting-room page: the `page` settings of an event (queue::page).

json_schema!(
    PageSettings,
    r##"{
 "type": [
  "object",
  "null"
 ],
 "additionalProperties": false,
 "default": null,
 "description": "The waiting page's brand (docs/api.md, \"Brand (page settings)\"), every field\noptional; null or absent fields are unset (and left out of the event view). Every\nvalue is HTML-escaped where the page uses it. Invalid values answer 400\nINVALID_ARGUMENT with a message naming the field (page.title, page.message,\npage.logo_url, page.accent_color, page.template); unknown fields inside page too.\nnull = the default page (shown as null).\n",
 "properties": {
  "title": {
   "type": [
    "string",
    "null"
   ],
   "maxLength": 120,
   "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
   "description": "The page's h1 and part of its <title>: plain text of at most 120 characters, without control characters."
  },
  "message": {
   "type": [
    "string",
    "null"
   ],
   "maxLength": 2000,
   "pattern": "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$",
   "description": "A paragraph under the title: plain text of at most 2000 characters, without control characters other than line breaks (kept)."
  },
  "logo_url": {
   "type": [
    "string",
    "null"
   ],
   "maxLength": 2048,
   "pattern": "^https?://[^/\"'<>;,\\\\` \\u0000-\\u001f\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\"'<>;,\\\\` \\u0000-\\u001f\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$",
   "description": "An image above the title (decorative): an absolute http(s) URL with a host, at most 2048 bytes, without whitespace, control characters, quotes, <>;,\\ or `. Its origin is added to the page's CSP img-src."
  },
  "accent_color": {
   "type": [
    "string",
    "null"
   ],
   "pattern": "^#[0-9A-Fa-f]{6}$",
   "description": "#rrggbb: the band at the top, buttons and the progress bar, in light and dark mode; text on it is white or black, whichever reaches 4.5:1."
  },
  "template": {
   "type": [
    "string",
    "null"
   ],
   "maxLength": 32768,
   "pattern": "^(?:[^{]|\\{[^{])*(?:\\{\\{[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:title|message|logo_url|accent_color|lang)[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*\\}\\}(?:[^{]|\\{[^{])*)*\\{\\{[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*queue[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*\\}\\}(?:[^{]|\\{[^{])*(?:\\{\\{[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:title|message|logo_url|accent_color|lang)[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*\\}\\}(?:[^{]|\\{[^{])*)*\\{?$",
   "description": "HTML for the page's body instead of the default layout, at most 32768 bytes, with\n{{variable}} placeholders (spaces inside the braces allowed), each HTML-escaped:\n{{queue}} (the live queue widget; required exactly once), {{title}}, {{message}},\n{{logo_url}}, {{accent_color}} and {{lang}}; no other {{ (the pattern says this\nmuch). Also refused, by checks the pattern does not express (case-insensitive):\n<script, <iframe, <frame, <object, <embed, <base, <meta, <link or <form, an\nevent-handler attribute (on...= after whitespace, / or a quote), and a\njavascript:, vbscript: or data:text/html URL.\n"
  }
 },
 "example": {
  "title": "Spring tour 2026",
  "message": "Doors open at 10:00.\nOne order per person.",
  "logo_url": "https://cdn.shop.example/logo.svg",
  "accent_color": "#ffd700",
  "template": "<header style=\"background:{{accent_color}}\"><img src=\"{{logo_url}}\" alt=\"Shop\"><h1>{{title}}</h1></header><main>{{queue}}<p>{{message}}</p></main>"
 }
}"##
);
