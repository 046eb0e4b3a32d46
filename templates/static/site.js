/* x402 monitor: progressive enhancement only. Without this script every page still works.
   Index: instant search, filters and sorting over api/endpoints.json, state in the URL query.
   Endpoint pages: copy buttons for the badge snippets. Text is always set with textContent. */
(function () {
  "use strict";
  var MISSING = "\u2014";
  var STATUS_RANK = { healthy: 0, degraded: 1, down: 2, unknown: 3 };
  var KEYS = ["q", "status", "category", "network", "min", "max", "sort", "dir"];
  var STEP = 200;

  function root() { return document.body.getAttribute("data-root") || ""; }

  function setupCopy() {
    var buttons = document.querySelectorAll("button[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(source.value).then(done, function () { source.select(); });
        } else {
          source.select();
          try { document.execCommand("copy"); done(); } catch (e) { /* selected: the user can copy */ }
        }
      });
    });
  }

  function ms(v) { return v === null || v === undefined ? MISSING : Math.round(v) + " ms"; }
  function percent(r) {
    if (r === null || r === undefined) { return MISSING; }
    var tenths = Math.floor(r * 1000 + 0.5);
    if (tenths >= 1000 && r < 1) { tenths = 999; }
    return (tenths / 10).toFixed(1) + "%";
  }
  function score(s) { return s === null || s === undefined ? "unrated" : s + "/100"; }
  function cut(text, limit) {
    text = text || "";
    return text.length <= limit ? text : text.slice(0, limit - 1).replace(/\s+$/, "") + "\u2026";
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function readState() {
    var params = new URLSearchParams(window.location.search);
    var state = {};
    KEYS.forEach(function (key) { state[key] = params.get(key) || ""; });
    return state;
  }
  function writeState(state) {
    var params = new URLSearchParams();
    KEYS.forEach(function (key) { if (state[key]) { params.set(key, state[key]); } });
    var query = params.toString();
    var url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
    window.history.replaceState(null, "", url);
  }
  function active(state) { return KEYS.some(function (key) { return state[key] !== ""; }); }

  function matches(item, state, terms) {
    if (state.status && item.status !== state.status) { return false; }
    if (state.category && (item.category || "") !== state.category) { return false; }
    if (state.network && (item.network_name || item.network || "") !== state.network) { return false; }
    var min = parseFloat(state.min), max = parseFloat(state.max);
    if (!isNaN(min) && (item.price_usd === null || item.price_usd < min)) { return false; }
    if (!isNaN(max) && (item.price_usd === null || item.price_usd > max)) { return false; }
    for (var i = 0; i < terms.length; i++) {
      if (item._text.indexOf(terms[i]) === -1) { return false; }
    }
    return true;
  }

  function compare(key, dir) {
    var sign = dir === "desc" ? -1 : 1;
    return function (a, b) {
      var x = a[key], y = b[key];
      if (key === "status") { x = STATUS_RANK[x]; y = STATUS_RANK[y]; }
      if (key === "title") { x = (a.title || a.url).toLowerCase(); y = (b.title || b.url).toLowerCase(); }
      if (key === "network") { x = a.network_name || a.network; y = b.network_name || b.network; }
      var xNull = x === null || x === undefined || x === "", yNull = y === null || y === undefined || y === "";
      if (xNull || yNull) { return xNull === yNull ? a._order - b._order : (xNull ? 1 : -1); }
      var result = typeof x === "string" ? x.localeCompare(y) : x - y;
      return result !== 0 ? sign * result : a._order - b._order;
    };
  }

  function row(item) {
    var base = root();
    var tr = el("tr");
    var statusCell = el("td");
    statusCell.appendChild(el("span", "status s-" + item.status, item.status));
    tr.appendChild(statusCell);
    var name = el("td", "name");
    var label = cut(item.title || item.url, 90);
    if (item.page) {
      var link = el("a", null, label);
      link.href = base + item.page;
      name.appendChild(link);
    } else {
      name.appendChild(document.createTextNode(label));
    }
    name.appendChild(el("small", "url", ((item.method || "") + " " + cut(item.url, 90)).trim()));
    tr.appendChild(name);
    tr.appendChild(el("td", "num", ms(item.p50_ms)));
    tr.appendChild(el("td", "num", percent(item.uptime_30d)));
    tr.appendChild(el("td", "num", score(item.score)));
    tr.appendChild(el("td", "num", cut(item.price || MISSING, 24)));
    tr.appendChild(el("td", null, cut(item.network_name || item.network || MISSING, 32)));
    var category = el("td");
    var categoryLink = el("a", null, cut(item.category || "Uncategorised", 40));
    categoryLink.href = base + "categories/" + item.category_slug + ".html";
    category.appendChild(categoryLink);
    tr.appendChild(category);
    var labels = ["Status", "Endpoint", "Latency (p50)", "Uptime (30d)", "Score", "Price", "Network", "Category"];
    Array.prototype.forEach.call(tr.children, function (cell, i) { cell.setAttribute("data-label", labels[i]); });
    return tr;
  }

  function fillSelect(select, values) {
    values.forEach(function (value) {
      var option = el("option", null, value);
      option.value = value;
      select.appendChild(option);
    });
  }

  function setupIndex(form) {
    var table = document.getElementById("endpoints");
    var tbody = table.tBodies[0];
    var staticBody = tbody.cloneNode(true);
    var caption = table.caption ? table.caption.textContent : "";
    var pager = document.querySelector("nav.pager");
    var more = document.getElementById("more");
    var count = document.getElementById("result-count");
    var items = [];
    var shown = STEP;
    var state = readState();

    function controls() { return form.querySelectorAll("input[name], select[name]"); }
    function render() {
      var headers = table.tHead.rows[0].cells;
      Array.prototype.forEach.call(headers, function (th) {
        var key = th.getAttribute("data-key");
        if (state.sort === key) { th.setAttribute("aria-sort", state.dir === "desc" ? "descending" : "ascending"); }
        else { th.removeAttribute("aria-sort"); }
      });
      if (!active(state)) {
        tbody.replaceWith(staticBody.cloneNode(true));
        tbody = table.tBodies[0];
        if (table.caption) { table.caption.textContent = caption; }
        if (pager) { pager.hidden = false; }
        more.hidden = true;
        count.textContent = "";
        return;
      }
      var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
      var found = items.filter(function (item) { return matches(item, state, terms); });
      if (state.sort) { found.sort(compare(state.sort, state.dir)); }
      var body = document.createElement("tbody");
      found.slice(0, shown).forEach(function (item) { body.appendChild(row(item)); });
      if (found.length === 0) {
        var empty = el("tr"), cell = el("td", null, "No endpoint matches these filters.");
        cell.colSpan = 8; empty.appendChild(cell); body.appendChild(empty);
      }
      tbody.replaceWith(body);
      tbody = body;
      if (pager) { pager.hidden = true; }
      var text = found.length + " of " + items.length + " endpoints match";
      if (table.caption) { table.caption.textContent = text + (found.length > shown ? ", showing the first " + shown : ""); }
      count.textContent = text + ".";
      more.hidden = found.length <= shown;
    }
    function update() {
      Array.prototype.forEach.call(controls(), function (input) { state[input.name] = input.value.trim(); });
      shown = STEP;
      writeState(state);
      render();
    }

    var offline = function () {
      count.textContent = "Search and filters need the site served over HTTP; the table below works without them.";
      document.body.setAttribute("data-ready", "0");
    };
    if (window.location.protocol === "file:") { offline(); return; }  // browsers refuse fetch() there
    fetch(root() + "api/endpoints.json", { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        items = data.endpoints;
        var categories = {}, networks = {};
        items.forEach(function (item, i) {
          item._order = i;
          item._text = [item.title, item.url, item.method, item.category, item.network, item.network_name, item.price, item.slug]
            .filter(Boolean).join(" ").toLowerCase();
          if (item.category) { categories[item.category] = true; }
          var network = item.network_name || item.network;
          if (network) { networks[network] = true; }
        });
        fillSelect(document.getElementById("f-category"), Object.keys(categories).sort());
        fillSelect(document.getElementById("f-network"), Object.keys(networks).sort());
        Array.prototype.forEach.call(controls(), function (input) {
          if (input.tagName === "SELECT" && state[input.name] &&
              !Array.prototype.some.call(input.options, function (o) { return o.value === state[input.name]; })) {
            fillSelect(input, [state[input.name]]);
          }
          input.value = state[input.name];
          input.addEventListener(input.tagName === "SELECT" ? "change" : "input", update);
        });
        form.addEventListener("submit", function (event) { event.preventDefault(); update(); });
        form.addEventListener("reset", function (event) {
          event.preventDefault();
          KEYS.forEach(function (key) { state[key] = ""; });
          Array.prototype.forEach.call(controls(), function (input) { input.value = ""; });
          shown = STEP;
          writeState(state);
          render();
        });
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
          var key = th.getAttribute("data-key");
          var button = el("button", null, th.textContent);
          button.type = "button";
          button.title = "Sort by " + th.textContent;
          button.addEventListener("click", function () {
            state.dir = state.sort === key && state.dir !== "desc" ? "desc" : "asc";
            state.sort = key;
            shown = STEP;
            writeState(state);
            render();
          });
          th.textContent = "";
          th.appendChild(button);
        });
        more.addEventListener("click", function () { shown += STEP; render(); });
        form.hidden = false;
        render();
        document.body.setAttribute("data-ready", "1");
      })
      .catch(offline);
  }

  function start() {
    setupCopy();
    var form = document.getElementById("filters");
    if (form) { setupIndex(form); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
