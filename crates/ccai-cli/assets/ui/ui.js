// The ccai inbox view. Plain JavaScript, no dependencies. Data from the API only ever reaches the
// page through textContent and attributes, never as HTML.
"use strict";

(function () {
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);

  // The token (off the loopback): taken from ?token= once, kept for this tab, and removed from
  // the address bar.
  const params = new URLSearchParams(location.search);
  let token = sessionStorage.getItem("ccai-ui-token") || "";
  if (params.has("token")) {
    token = params.get("token") || "";
    sessionStorage.setItem("ccai-ui-token", token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }

  // The event stream's address: EventSource cannot send a header, so the token goes in it.
  function withToken(url) {
    if (!token) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  // A request to the API, the token in the Authorization header (never in the address); a
  // refused token shows the notice.
  async function request(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (token) opts.headers["Authorization"] = "Bearer " + token;
    if (opts.method === "POST") opts.headers["X-CCAI-UI"] = "1";
    const response = await fetch(path, opts);
    if (response.status === 401) {
      $("auth").hidden = false;
      throw new Error("this view requires its token");
    }
    return response;
  }

  async function jsonOf(response) {
    try { return await response.json(); } catch (e) { return null; }
  }

  // The error of an answer that is not a success, as the API's `body` says it.
  function failure(response, body) {
    const error = new Error((body && body.error) || ("the server answered " + response.status));
    // The accounts an error about an event's hash names (several hold it, or others do).
    error.clientIds = body && Array.isArray(body.clientIds) ? body.clientIds : [];
    // A read the store stopped at its time limit: the same one would be stopped again.
    error.stopped = !!(body && body.stopped === true);
    return error;
  }

  async function api(path, options) {
    const response = await request(path, options);
    const body = await jsonOf(response);
    if (!response.ok) throw failure(response, body);
    return body;
  }

  // The characters that reorder the text around them (bidirectional marks, embeddings, overrides
  // and isolates) and the line and paragraph separators, written as \u{…} as the pretty body and
  // the command line write them: a value cannot make itself or its neighbours read otherwise.
  const REORDERING = /[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  function inert(text) {
    return String(text).replace(REORDERING, (c) => "\\u{" + c.codePointAt(0).toString(16) + "}");
  }

  // Builds an element: el("td", {class: "x"}, "text", otherNode); text is made inert.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(inert(child)));
    }
    return node;
  }

  function shortTime(rfc3339) {
    if (!rfc3339) return "–";
    return String(rfc3339).replace("T", " ").replace(/\.\d+Z$/, "").replace(/Z$/, "");
  }

  // Every attempt recorded (as the list counts and the attempts table lists them), and those of
  // the current schedule beside when a replay started it over (as `ccai events show` writes it).
  function attemptsText(d) {
    return d.attempts === d.totalAttempts ? String(d.totalAttempts)
      : d.totalAttempts + " (" + d.attempts + " since replayed)";
  }

  function badge(status) {
    const label = status === "in_progress" ? "in progress" : status;
    return el("span", { class: "badge s-" + status }, label);
  }

  // ---- filters -----------------------------------------------------------------------------
  // The filters the list shows, as last applied: what is being typed in the form does not
  // change the live updates or the older pages until Apply.
  let applied = {};

  function applyFilters() {
    applied = {
      status: $("f-status").value,
      type: $("f-type").value.trim(),
      since: $("f-since").value,
      q: $("f-q").value,
    };
  }

  function query(extra) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(Object.assign({}, applied, extra || {}))) {
      if (value !== "" && value !== null && value !== undefined) q.set(key, value);
    }
    const text = q.toString();
    return text ? "?" + text : "";
  }

  // The link's address never holds the token: on the loopback (no token) the browser downloads
  // it by itself, streamed to disk; with a token, a click fetches it (downloadWithToken).
  function updateDownload() {
    $("download").href = "/api/events.ndjson" + query();
  }

  // The file name the server gives the download (Content-Disposition), as the link saves it.
  function fileName(response) {
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = disposition.match(/filename="([^"]+)"/);
    return match ? match[1] : "ccai-events.ndjson";
  }

  // With a token: the download is asked for with the token in the Authorization header and
  // saved from a blob: an address with ?token= would stay in the browser's downloads list and
  // history and in a proxy's log. The whole download is held in memory until it is saved.
  let downloading = false;
  async function downloadWithToken(e) {
    if (!token) return;
    e.preventDefault();
    if (downloading) return;
    downloading = true;
    try {
      const response = await request($("download").getAttribute("href"));
      if (!response.ok) throw failure(response, await jsonOf(response));
      let blob;
      try {
        blob = await response.blob();
      } catch (cut) {
        // The server cuts the answer short when the store fails after the first page.
        throw new Error("the download broke off before its end (the store failed?): try again");
      }
      const url = URL.createObjectURL(blob);
      const save = el("a", { href: url, download: fileName(response), hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
      // Let go later, not at once: a browser may read the blob after click() has returned.
      setTimeout(() => URL.revokeObjectURL(url), 40000);
      recovered();
    } catch (err) {
      report(err);
    } finally {
      downloading = false;
    }
  }

  // ---- the list ----------------------------------------------------------------------------
  // A row is one account's event: accounts sharing the inbox may each hold an event under the
  // same hash, so rows are keyed by (client id, hash), and links and actions name both.
  const keyOf = (clientId, hash) => JSON.stringify([clientId, hash]);
  const eventKey = (event) => keyOf(event.clientId, event.eventHash);
  const rowKey = (tr) => keyOf(tr.dataset.clientId, tr.dataset.hash);
  const rows = new Map(); // keyOf(client id, hash) -> <tr>

  // The address of an event's details (`#/event/HASH?clientId=ID`).
  function eventLink(clientId, hash) {
    return "#/event/" + encodeURIComponent(hash) + "?clientId=" + encodeURIComponent(clientId);
  }

  // Whether `tr` shows the selected event (a link without its client id selects every row with
  // its hash until the server says whose it is).
  function isSelected(tr) {
    return selected !== null && tr.dataset.hash === selected.hash &&
      (selected.clientId === null || tr.dataset.clientId === selected.clientId);
  }
  let next = null;
  let generation = 0; // ignores answers to requests made before the filters changed
  // The generation whose list the store stopped (a search past its read time limit): it is not
  // read again by itself, by the live updates or the retry after a failure, each of which would
  // hold a read of the store for the whole limit again, until the filters are applied anew.
  let stoppedAt = null;
  // What the list says without rows, where a stopped read does not say why instead.
  const NONE_MATCH = "No events match.";

  // Notes that `e`, an error reading generation `mine`'s list, was a stopped read, and says so
  // where the rows would be.
  function listFailed(e, mine) {
    if (e.stopped && mine === generation) {
      stoppedAt = mine;
      $("events").tBodies[0].replaceChildren();
      rows.clear();
      next = null;
      showCount();
      $("empty").textContent = e.message;
      $("empty").hidden = false;
    }
    throw e;
  }

  function rowFor(event) {
    const repeats = el("td", { "data-label": "repeats" });
    if (event.duplicates > 0) {
      repeats.append(el("span", { class: "dup", title: event.duplicates + " duplicate deliveries" }, "×" + event.duplicates));
    }
    if (event.conflicts > 0) {
      repeats.append(el("span", { class: "conflict", title: event.conflicts + " deliveries with this hash and a different body" }, "⚠", el("span", { class: "sr" }, " conflict")));
    }
    if (!repeats.childNodes.length) repeats.append("–");
    const link = el("a", { href: eventLink(event.clientId, event.eventHash), class: "mono", title: event.eventHash }, event.shortHash);
    const tr = el("tr", { "data-hash": event.eventHash, "data-client-id": event.clientId, "data-status": event.status },
      el("td", { "data-label": "status" }, badge(event.status)),
      el("td", { "data-label": "type" }, event.eventType),
      el("td", { "data-label": "hash" }, link),
      el("td", { "data-label": "client id", class: "client" }, event.clientId),
      el("td", { "data-label": "received" }, shortTime(event.receivedAt)),
      el("td", { "data-label": "attempts" }, String(event.attempts)),
      repeats);
    if (isSelected(tr)) tr.classList.add("selected");
    return tr;
  }

  function showCount() {
    $("count").textContent = rows.size ? "(" + rows.size + (next ? "+" : "") + ")" : "";
    // The client id column, when the rows shown are several accounts' (the details always say).
    const clients = new Set([...rows.values()].map((tr) => tr.dataset.clientId));
    $("events").classList.toggle("accounts", clients.size > 1);
    $("empty").hidden = rows.size > 0;
    $("older").hidden = !next;
  }

  // The first page (replacing the list), or with `older` the page after the last one shown.
  async function load(older) {
    if (older && !next) return;
    const mine = older ? generation : ++generation;
    const request = api("/api/events" + query(older ? { limit: PAGE, cursor: next } : { limit: PAGE }));
    // An older page stopped leaves the rows shown as they are: the newest still read.
    const page = await (older ? request : request.catch((e) => listFailed(e, mine)));
    if (mine !== generation) return;
    show(page, !older);
  }

  // Shows a page after the rows shown, or with `replace` instead of them.
  function show(page, replace) {
    const body = $("events").tBodies[0];
    if (replace) {
      body.replaceChildren();
      rows.clear();
      $("empty").textContent = NONE_MATCH;
    }
    for (const event of page.events) {
      if (rows.has(eventKey(event))) continue;
      const tr = rowFor(event);
      rows.set(eventKey(event), tr);
      body.append(tr);
    }
    next = page.next;
    showCount();
  }
  const loadFirst = () => load(false);
  const loadOlder = () => load(true);

  // New events go on top; rows already shown are updated in place; older pages stay as they are.
  async function refreshTop() {
    const mine = generation;
    if (stoppedAt === mine) return;
    const page = await api("/api/events" + query({ limit: PAGE })).catch((e) => listFailed(e, mine));
    if (mine !== generation) return;
    // The applied filters' list is read: a stopped read's message, left from filters applied
    // before whose first load then failed, no longer says what it shows.
    $("empty").textContent = NONE_MATCH;
    // A full page of events none of which is shown: more arrived than a page holds since the
    // last look (the stream was reconnecting, say), and others may lie between them and the rows
    // shown. The list starts over from this page, with the older ones a click away.
    if (rows.size && page.next && !page.events.some((event) => rows.has(eventKey(event)))) {
      ++generation;
      show(page, true);
      return;
    }
    const body = $("events").tBodies[0];
    // Rows this page should hold and does not left the filter (a status changed) or the store
    // (purged): those above the lowest row it holds, or any when it is the whole list.
    const held = new Set(page.events.map(eventKey));
    let lowest = null;
    for (const event of page.events) lowest = rows.get(eventKey(event)) || lowest;
    if (lowest || !page.next) {
      for (const tr of [...body.rows]) {
        if (page.next && tr === lowest) break;
        if (held.has(rowKey(tr))) continue;
        rows.delete(rowKey(tr));
        tr.remove();
      }
    }
    const fresh = [];
    for (const event of page.events) {
      const old = rows.get(eventKey(event));
      if (old) {
        const tr = rowFor(event);
        if (tr.innerHTML === old.innerHTML) continue;
        // Keyboard focus stays on the row's link when the row is updated.
        const focused = old.contains(document.activeElement);
        old.replaceWith(tr);
        rows.set(eventKey(event), tr);
        if (focused) tr.querySelector("a").focus();
      } else {
        fresh.push(event);
      }
    }
    for (const event of fresh.reverse()) {
      const tr = rowFor(event);
      tr.classList.add("new");
      rows.set(eventKey(event), tr);
      body.prepend(tr);
    }
    if (rows.size === fresh.length) next = page.next;
    showCount();
  }

  // ---- counters and chart ------------------------------------------------------------------
  async function loadStats() {
    const stats = await api("/api/stats");
    // A view of one account's events (`ccai ui --client-id`): the counters still count every
    // account's, and say so.
    $("account").hidden = !stats.clientId;
    $("account").textContent = stats.clientId ? inert("Client id " + stats.clientId + "'s events") : "";
    $("overview-scope").hidden = !stats.clientId;
    $("c-received").textContent = stats.received;
    $("c-duplicates").textContent = stats.duplicates;
    $("c-delivered").textContent = stats.delivered;
    $("c-pending").textContent = stats.pending + stats.inProgress;
    $("c-dead").textContent = stats.dead;
    $("c-oldest").textContent = stats.oldestPendingAge || "–";
    const counts = stats.perMinute || [];
    const max = Math.max(1, ...counts);
    const now = Date.now();
    const bars = counts.map((n, i) => {
      const minute = new Date(now - (counts.length - 1 - i) * 60000).toISOString().slice(11, 16);
      const bar = el("span", { title: minute + " UTC: " + n + " event" + (n === 1 ? "" : "s"), class: n ? null : "zero" });
      bar.style.height = Math.round((n / max) * 100) + "%";
      return bar;
    });
    $("chart").replaceChildren(...bars);
    const total = counts.reduce((a, b) => a + b, 0);
    $("chart-total").textContent = "(" + total + (stats.perMinuteCapped ? "+" : "") + " in all)";
    $("chart").setAttribute("aria-label", "Events per minute, last 60 minutes: " + total + " in all");
  }

  // ---- details -----------------------------------------------------------------------------
  // The event whose details are asked for: {hash, clientId}; clientId is null for a link without
  // it until the server has said whose event it is.
  let selected = null;

  function field(list, name, value) {
    list.append(el("dt", null, name), el("dd", null, value === null || value === undefined || value === "" ? "–" : String(value)));
  }

  function selectRow() {
    for (const tr of rows.values()) tr.classList.toggle("selected", isSelected(tr));
  }

  // The API's address for one event (`action`: "replay", "retry", or none for its details). The
  // hash goes in the query: as a path segment, a hash `.` or `..` would be removed by the browser
  // before the request is sent (percent-encoded too).
  function eventApi(action, hash, clientId) {
    const q = new URLSearchParams({ hash: hash });
    if (clientId !== null && clientId !== undefined) q.set("clientId", clientId);
    return "/api/event" + (action ? "/" + action : "") + "?" + q.toString();
  }

  // Shows the details (keyboard focus on them with `focus`, or when they were hidden).
  function reveal(focus) {
    const section = $("detail");
    const wasHidden = section.hidden;
    section.hidden = false;
    document.querySelector(".layout").classList.add("with-detail");
    if (focus || wasHidden) {
      section.focus({ preventScroll: true });
      section.scrollIntoView({ block: "nearest" });
    }
  }

  // The details without an event: one being loaded, or why the one asked for cannot be shown
  // (with links to the accounts' events when the error names several). Nothing of the event
  // shown before stays, its actions included: under a link, only that link's event is shown.
  function detailWithout(hash, text, failed, clientIds) {
    const section = $("detail");
    delete section.dataset.hash;
    delete section.dataset.clientId;
    delete section.dataset.attempts;
    $("detail-title").replaceChildren("Event");
    for (const id of ["fields", "typed", "typed-kind", "body-pretty", "body-raw", "action-status"]) {
      $(id).replaceChildren();
    }
    $("deliveries").tBodies[0].replaceChildren();
    $("attempts").tBodies[0].replaceChildren();
    // Keyboard focus on an action that goes stays in the details.
    if ($("detail-event").contains(document.activeElement)) section.focus({ preventScroll: true });
    $("replay").disabled = true;
    $("retry").disabled = true;
    $("detail-event").hidden = true;
    const message = $("detail-message");
    // The same text again (a refresh that fails as the last one did) is not announced again.
    if (message.textContent !== inert(text)) message.textContent = inert(text);
    message.className = failed ? "notice" : "muted";
    $("detail-holders").replaceChildren(...(clientIds || []).map((id) =>
      el("li", null, el("a", { href: eventLink(id, hash) }, "Client id " + id + "'s event"))));
    $("detail-status").hidden = false;
  }

  // Which call of showDetail is the latest: only its answer is shown. An earlier one that ends
  // later (a refresh of the account's event, answered after a link without the account asked
  // for the same hash) would otherwise show that account's event instead of the newer answer.
  let detailAsked = 0;

  async function showDetail(hash, clientId, focus) {
    const asked = ++detailAsked;
    if (!selected || selected.hash !== hash || selected.clientId !== clientId) {
      selected = { hash, clientId };
      // Another event: the one shown until now goes at once (its answer may take a while).
      detailWithout(hash, "Loading the event…", false, null);
      reveal(focus);
    }
    selectRow();
    const section = $("detail");
    let event;
    try {
      event = await api(eventApi(null, hash, clientId));
    } catch (e) {
      // Said in the details (unless another event was asked for meanwhile), not as the live
      // updates failing: the list and the counters may well be fine.
      if (asked === detailAsked && selected && selected.hash === hash && selected.clientId === clientId) {
        detailWithout(hash, "This event cannot be shown: " + e.message, true, e.clientIds);
        reveal(false);
      }
      return;
    }
    // Another event was asked for meanwhile, or this one again (the later answer shows it).
    if (asked !== detailAsked) return;
    const whose = clientId === null ? event.clientId : clientId;
    if (!selected || selected.hash !== hash || (selected.clientId !== null && selected.clientId !== whose)) return;
    if (selected.clientId === null) {
      selected.clientId = whose;
      selectRow();
    }
    $("detail-status").hidden = true;
    $("detail-event").hidden = false;
    section.dataset.hash = event.eventHash;
    section.dataset.clientId = event.clientId;
    section.dataset.attempts = String(event.attempts.length);
    $("detail-title").replaceChildren(inert(event.eventType) + " ", el("span", { class: "muted mono" }, "#" + event.shortHash));
    const fields = $("fields");
    fields.replaceChildren();
    const status = el("dd", null, badge(event.status));
    fields.append(el("dt", null, "Status"), status);
    field(fields, "Hash", event.eventHash);
    field(fields, "Received (UTC)", shortTime(event.receivedAt));
    field(fields, "Next attempt (UTC)", event.nextAttemptAt ? shortTime(event.nextAttemptAt) : null);
    field(fields, "Client id", event.clientId);
    field(fields, "Content type", event.contentType);
    field(fields, "Signature", event.signature);
    field(fields, "Body", event.bodyLen === null ? "purged" : event.bodyLen + " bytes, sha256 " + event.bodySha256);
    field(fields, "Duplicates", event.duplicates);
    field(fields, "Conflicts", event.conflicts ? event.conflicts + " (a different body with this hash; the first is kept; last sha256 " + event.lastConflictSha256 + ")" : 0);

    $("deliveries").tBodies[0].replaceChildren(...event.deliveries.map((d) => el("tr", null,
      el("td", null, d.destination), el("td", null, badge(d.status)), el("td", null, attemptsText(d)),
      el("td", null, d.nextAttemptAt ? shortTime(d.nextAttemptAt) : (d.deliveredAt ? "delivered " + shortTime(d.deliveredAt) : "–")),
      el("td", null, d.lastError || "–"))));

    $("attempts").tBodies[0].replaceChildren(...event.attempts.map((a) => el("tr", null,
      el("td", null, shortTime(a.startedAt)), el("td", null, a.durationMs + " ms"), el("td", null, a.outcome),
      el("td", null, a.httpStatus === null ? "–" : String(a.httpStatus)), el("td", null, a.error || "–"))));
    $("no-attempts").hidden = event.attempts.length > 0;

    const typed = $("typed");
    typed.replaceChildren();
    $("typed-kind").textContent = "";
    if (event.typed && event.typed.fields) {
      $("typed-kind").textContent = event.typed.kind ? "(" + event.typed.kind + ")" : "";
      for (const f of event.typed.fields) field(typed, f.name, f.value);
    } else if (event.typed && event.typed.error) {
      field(typed, "not typed", event.typed.error);
    }
    $("body-pretty").textContent = event.bodyPretty === null ? "(purged)" : event.bodyPretty;
    $("body-raw").textContent = event.body === null ? "(purged)" : event.body;
    const focused = document.activeElement;
    // A purged body leaves nothing to send: the server would refuse (409), so neither is offered.
    const purged = event.body === null;
    $("retry").disabled = purged || !event.deliveries.some((d) => d.status === "dead");
    $("replay").disabled = purged || event.deliveries.every((d) => d.status === "in_progress");
    for (const id of ["retry", "replay"]) {
      $(id).title = purged ? "Its body was purged: there is nothing to send." : "";
    }
    // A button disabled with keyboard focus on it (Retry now, once the event is not dead) would
    // send focus back to the top of the page: it stays in the details.
    if ((focused === $("retry") || focused === $("replay")) && focused.disabled) {
      section.focus({ preventScroll: true });
    }

    reveal(focus);
  }

  function closeDetail() {
    // Keyboard focus in the details goes back to the row they were opened from.
    const back = $("detail").contains(document.activeElement) ? [...rows.values()].find(isSelected) : null;
    selected = null;
    selectRow();
    $("detail").hidden = true;
    delete $("detail").dataset.hash;
    delete $("detail").dataset.clientId;
    document.querySelector(".layout").classList.remove("with-detail");
    $("action-status").textContent = "";
    if (back) back.querySelector("a").focus();
  }

  function decoded(text) {
    try { return decodeURIComponent(text); } catch (e) { return text; }
  }

  // `#/event/HASH?clientId=ID`, or `#/event/HASH` (a link from before accounts were told apart,
  // fine where one account holds the hash).
  function route() {
    const match = location.hash.match(/^#\/event\/([^?]+)(?:\?clientId=(.*))?$/);
    if (match) {
      const hash = decoded(match[1]);
      const clientId = match[2] === undefined ? null : decoded(match[2]);
      $("action-status").textContent = "";
      showDetail(hash, clientId, true).then(recovered, report);
    } else {
      closeDetail();
    }
  }

  // An action is running: another click (a double click) is ignored instead of sending a
  // second request, which a retry answers 409 (the event no longer dead).
  let acting = false;

  // Acts on the event the details show: that account's, whatever the address asked for.
  async function act(kind) {
    const section = $("detail");
    if (!selected || acting || !section.dataset.hash) return;
    acting = true;
    const hash = section.dataset.hash;
    const clientId = section.dataset.clientId;
    const status = $("action-status");
    status.textContent = kind === "replay" ? "Replaying…" : "Retrying…";
    try {
      const answer = await api(eventApi(kind, hash, clientId), { method: "POST" });
      const n = kind === "replay" ? answer.replayed : answer.requeued;
      status.textContent = (kind === "replay" ? "Replayed" : "Retrying now") + ": " + n +
        " deliver" + (n === 1 ? "y is" : "ies are") + " due now; a running ccai listen --forward-to sends " + (n === 1 ? "it" : "them") + ".";
      // The details again unless another event's were opened meanwhile. A refresh that fails
      // says so where every refresh does: the replay is done, and "Failed" here would invite a
      // second one.
      const still = selected && selected.hash === hash && selected.clientId === clientId;
      await Promise.all([still ? showDetail(hash, clientId, false) : null, refreshTop(), loadStats()])
        .catch(report);
    } catch (e) {
      status.textContent = "Failed: " + e.message;
    } finally {
      acting = false;
    }
  }

  // ---- bulk replay --------------------------------------------------------------------------
  // Every event the applied filters match, made due again as `ccai events replay --status/--type`
  // does (dead ones start their retries over). As there, a status or a type is required; the
  // time and the text only narrow it. Asked first, in the page: the question names the filters
  // it will use, which stay as they were asked about whatever is typed meanwhile.
  let bulkQuery = null; // the query of the filters the open question is about
  let bulkActing = false;

  function bulkAllowed() {
    return applied.status !== "" || applied.type !== "";
  }

  // The button follows the applied filters; a question or an outcome about other filters goes.
  function updateBulk() {
    const button = $("bulk-replay");
    button.disabled = !bulkAllowed();
    button.title = button.disabled ? "Filter by status or type first: a bulk replay needs one." : "";
    closeBulk();
    if (!bulkActing) $("bulk-status").textContent = "";
  }

  function closeBulk() {
    bulkQuery = null;
    $("bulk").hidden = true;
  }

  // The applied filters in words: `status dead, type message.sent, received in the last hour`.
  function describeFilters() {
    const parts = [];
    if (applied.status) parts.push("status " + applied.status.replace("_", " "));
    if (applied.type) parts.push("type " + applied.type);
    if (applied.since) {
      const option = [...$("f-since").options].find((o) => o.value === applied.since);
      parts.push("received " + (option ? option.textContent : "since " + applied.since));
    }
    if (applied.q) parts.push("body containing \u201c" + applied.q + "\u201d");
    return parts.join(", ");
  }

  function askBulk() {
    if (!bulkAllowed() || bulkActing) return;
    bulkQuery = query();
    const listed = next ? rows.size + " or more events" : plural(rows.size, "event", "events");
    // A list the store stopped shows no rows, which says nothing of how many match.
    const shown = stoppedAt === generation
      ? "How many match is not known: the store stopped the list's search (the replay searches again, within the same limit). "
      : "The list shows " + listed + ". ";
    $("bulk-question").textContent = inert("Replay every event matching " + describeFilters() + "? " +
      shown + "Each is made due again (dead ones start their retries over), " +
      "and a running ccai listen --forward-to sends them; those whose body was purged are skipped.");
    $("bulk-status").textContent = "";
    $("bulk").hidden = false;
    $("bulk-confirm").focus();
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  async function confirmBulk() {
    if (bulkQuery === null || bulkActing) return;
    bulkActing = true;
    const asked = bulkQuery;
    const status = $("bulk-status");
    status.className = "bulk-status muted";
    status.textContent = "Replaying…";
    $("bulk-confirm").disabled = true;
    try {
      const answer = await api("/api/replay" + asked, { method: "POST" });
      const due = answer.replayed;
      const purged = answer.bodyPurgedEvents;
      status.textContent = "Bulk replay: " + plural(due, "delivery", "deliveries") + " made due; " +
        (purged ? plural(purged, "event", "events") + " skipped: " + (purged === 1 ? "its body was" : "their bodies were") +
          " purged, so there is nothing to send." : "none skipped.");
      closeBulk();
      // A refresh that fails says so where every refresh does, not as the replay's failure.
      await Promise.all([refreshTop(), loadStats()]).catch(report);
    } catch (e) {
      status.className = "bulk-status notice";
      status.textContent = "Bulk replay failed: " + e.message;
    } finally {
      bulkActing = false;
      $("bulk-confirm").disabled = false;
    }
  }

  function report(e) {
    $("live").textContent = e.message;
    $("live").className = "live off";
  }

  // The live-update stream, once connected.
  let source = null;

  // After a request that worked: "live" again if an error was shown while the stream is
  // connected (a stream that is reconnecting keeps saying so).
  function recovered() {
    if (source && source.readyState === EventSource.OPEN) {
      $("live").textContent = "live";
      $("live").className = "live on";
    }
  }

  // ---- live updates ------------------------------------------------------------------------
  let busy = false;
  let again = false;
  let retrying = null;
  async function onChange() {
    if (busy) { again = true; return; }
    busy = true;
    clearTimeout(retrying);
    retrying = null;
    let failed = false;
    // A failed refresh ends only its own round: a change announced meanwhile still gets one.
    do {
      again = false;
      try {
        await Promise.all([refreshTop(), loadStats(), selected ? showDetail(selected.hash, selected.clientId, false) : null]);
        failed = false;
        recovered();
      } catch (e) {
        failed = true;
        report(e);
      }
    } while (again);
    busy = false;
    // A failed refresh is tried again by itself: a store that was unreadable for a while
    // announces no change once it is back (what changed meanwhile went unseen). While the stream
    // reconnects, its "ready" refreshes instead; a refused token waits for the user.
    if (failed) {
      retrying = setTimeout(() => {
        retrying = null;
        if (source && source.readyState === EventSource.OPEN && $("auth").hidden) onChange();
      }, 5000);
    }
  }

  function connect() {
    source = new EventSource(withToken("/api/stream"));
    source.addEventListener("ready", () => {
      $("live").textContent = "live";
      $("live").className = "live on";
      onChange();
    });
    source.addEventListener("change", onChange);
    source.onerror = () => {
      $("live").textContent = "reconnecting…";
      $("live").className = "live off";
      if (source.readyState !== EventSource.CLOSED) return;
      // Refused (a status other than 200), which the browser does not retry, unlike a lost
      // connection: the API says why (a view restarted with another token shows the notice),
      // and unless that is the token the stream is tried again.
      $("live").textContent = "disconnected";
      loadStats().catch(report).finally(() => {
        if ($("auth").hidden) setTimeout(connect, 5000);
      });
    };
  }

  // ---- start -------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      applyFilters();
      updateDownload();
      updateBulk();
      loadFirst().then(recovered, report);
    });
    $("clear").addEventListener("click", () => {
      $("filters").reset();
      applyFilters();
      updateDownload();
      updateBulk();
      loadFirst().then(recovered, report);
    });
    // With a token, every click on the link the page sees fetches it with the token: a plain
    // one, one with Ctrl, Cmd, Shift or Alt (a new tab, a window, "save"), and a middle-click,
    // which is an auxclick, not a click. Each would otherwise follow the address without the
    // token, to a 401 (in Chromium, a failed download). The context menu's "open in new tab" and
    // "save link as" reach no script: a tab opened so shows the server's text saying to use this
    // link.
    $("download").addEventListener("click", downloadWithToken);
    $("download").addEventListener("auxclick", (e) => {
      if (e.button === 1) downloadWithToken(e);
    });
    $("bulk-replay").addEventListener("click", askBulk);
    $("bulk-confirm").addEventListener("click", confirmBulk);
    $("bulk-cancel").addEventListener("click", () => {
      closeBulk();
      $("bulk-replay").focus();
    });
    $("older").addEventListener("click", () => {
      const button = $("older");
      const last = $("events").tBodies[0].lastElementChild;
      const lastKey = last ? rowKey(last) : null;
      loadOlder().then(() => {
        recovered();
        // The last page hides the button, and keyboard focus with it: it goes to the first row
        // just loaded.
        const row = lastKey && rows.has(lastKey) ? rows.get(lastKey).nextElementSibling : null;
        if (button.hidden && row && (document.activeElement === button || document.activeElement === document.body)) {
          row.querySelector("a").focus();
        }
      }, report);
    });
    $("close").addEventListener("click", () => { location.hash = "#"; });
    $("replay").addEventListener("click", () => act("replay"));
    $("retry").addEventListener("click", () => act("retry"));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !$("detail").hidden) location.hash = "#";
    });
    window.addEventListener("hashchange", route);
    applyFilters();
    updateDownload();
    updateBulk();
    start();
  });

  // The first load, then the live stream. A first load that fails (the store unreachable for a
  // moment) is tried again, unless the token is what is wrong (the page would otherwise wait for
  // a reload that nothing tells the user to do) or the store stopped the list's search.
  function start() {
    Promise.all([loadFirst(), loadStats()])
      .catch((e) => {
        // A list the store stopped says so where its rows would be; the page goes on without it.
        if (!e.stopped) throw e;
        report(e);
      })
      .then(() => {
        document.body.dataset.ready = "1";
        connect();
        route();
      })
      .catch((e) => {
        report(e);
        if ($("auth").hidden) setTimeout(start, 5000);
      });
  }
})();
