// The interactive page of an nngraph picture: pan and zoom, open and close layers, hover, search.
// Every picture the page can show was laid out beforehand (graph-data: states, each with the layer
// instances it draws open, `expand`, and its SVG); opening or closing a layer swaps pictures.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var canvas = document.getElementById("canvas");
  var viewport = document.getElementById("viewport");
  var info = document.getElementById("info");
  var status = document.getElementById("status");
  var search = document.getElementById("search");
  var matches = document.getElementById("matches");
  var XLINK = "http://www.w3.org/1999/xlink";
  var view = { x: 0, y: 0, k: 1 };
  var current = null;
  var byKey = {};

  function key(list) { return list.slice().sort().join("\n"); }
  data.states.forEach(function (state) { byKey[key(state.expand)] = state; });

  function title(g) {
    var t = g.querySelector("title");
    return t ? t.textContent : "";
  }
  function boxScope(g) {                       // "net.block1" for the node of a collapsed layer
    var t = title(g), at = t.indexOf("layer:");
    return at < 0 ? null : t.slice(at + 6);
  }
  function clusterScope(g) {
    return g.id && g.id.indexOf("scope:") === 0 ? g.id.slice(6) : null;
  }
  function tooltip(g) {
    var a = g.querySelector("a");
    return a ? (a.getAttributeNS(XLINK, "title") || a.getAttribute("title") || "") : "";
  }
  function within(scope, outer) { return scope === outer || scope.indexOf(outer + ".") === 0; }

  function openTarget(scope) { return byKey[key(current.expand.concat([scope]))] || null; }
  function closeTarget(scope) {                // the picture with `scope` (opened) and what is inside it closed
    if (current.expand.indexOf(scope) < 0) { return null; }
    var open = current.expand.filter(function (e) { return !within(e, scope); });
    return byKey[key(open)] || null;
  }

  function apply() {
    canvas.style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.k + ")";
  }
  function fit(whole) {                        // the whole picture, or its top at a readable scale
    var svg = canvas.querySelector("svg");
    if (!svg) { return; }
    var w = svg.width.baseVal.value, h = svg.height.baseVal.value;
    var vw = viewport.clientWidth || 800, vh = viewport.clientHeight || 600;
    view.k = Math.min(1, vw / w, whole === true ? vh / h : Math.max(vh / h, 0.6));
    view.x = (vw - w * view.k) / 2;
    view.y = 0;
    apply();
  }
  function zoom(factor, px, py) {
    view.x = px - (px - view.x) * factor;
    view.y = py - (py - view.y) * factor;
    view.k *= factor;
    apply();
  }

  function show(state, keepView) {
    current = state;
    canvas.innerHTML = state.svg;
    canvas.querySelectorAll("g.node").forEach(function (g) {
      var scope = boxScope(g);
      if (scope !== null) {
        g.classList.add("box");
        if (!openTarget(scope)) { g.classList.add("unavailable"); }
      }
    });
    canvas.querySelectorAll("g.cluster").forEach(function (g) {
      var scope = clusterScope(g);
      if (scope !== null && closeTarget(scope)) { g.classList.add("closable"); }
    });
    status.textContent = (state.expand.length ? "open: " + state.expand.join(", ") + ". " : "") +
      "Click a box to open it; click an open layer's frame to close it; drag to pan, wheel to zoom.";
    if (!keepView) { fit(); }
    runSearch();
  }

  function runSearch() {
    var q = search.value.trim().toLowerCase();
    var count = 0;
    canvas.querySelectorAll("g.node").forEach(function (g) {
      var text = (title(g) + "\n" + g.textContent).toLowerCase();     // its name, label and layer
      var hit = q !== "" && text.indexOf(q) >= 0;
      g.classList.toggle("match", hit);
      g.classList.toggle("dim", q !== "" && !hit);
      if (hit) { count += 1; }
    });
    canvas.querySelectorAll("g.edge").forEach(function (g) { g.classList.toggle("dim", q !== ""); });
    matches.textContent = q === "" ? "" : count + (count === 1 ? " match" : " matches");
  }

  // pan (drag), zoom (wheel), and clicks that are not the end of a drag
  var drag = null, dragged = false;
  viewport.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
    dragged = false;
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) { dragged = true; viewport.classList.add("dragging"); }
    if (dragged) { view.x = drag.vx + dx; view.y = drag.vy + dy; apply(); }
  });
  window.addEventListener("mouseup", function () { drag = null; viewport.classList.remove("dragging"); });
  viewport.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = viewport.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  viewport.addEventListener("click", function (e) {
    if (dragged) { return; }
    var g = e.target.closest ? e.target.closest("g.node, g.cluster") : null;
    if (!g) { return; }
    var next = null;
    if (g.classList.contains("box")) {
      next = openTarget(boxScope(g));
      if (!next) { status.textContent = boxScope(g) + " was too big to lay out in this page: draw it with --expand"; }
    } else if (g.classList.contains("cluster")) {
      next = closeTarget(clusterScope(g) || "");
    }
    if (next) { show(next, true); }
  });
  viewport.addEventListener("mouseover", function (e) {
    var g = e.target.closest ? e.target.closest("g.node") : null;
    var text = g ? tooltip(g) : "";
    info.textContent = text;
    info.style.display = text ? "block" : "none";
  });
  document.getElementById("zoom-in").addEventListener("click", function () {
    zoom(1.25, viewport.clientWidth / 2, viewport.clientHeight / 2);
  });
  document.getElementById("zoom-out").addEventListener("click", function () {
    zoom(0.8, viewport.clientWidth / 2, viewport.clientHeight / 2);
  });
  document.getElementById("fit").addEventListener("click", function () { fit(true); });
  search.addEventListener("input", runSearch);

  show(data.states[0], false);
})();
