/* fortmap report map: vanilla JS, no dependency, no network.
 * Map units are metres from the scene's top-left corner, y down (as SVG). */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var D = JSON.parse(document.getElementById("fm-data").textContent);
  var svg = document.getElementById("svg");
  var map = document.getElementById("map");
  var W = D.width_m, H = D.height_m;
  var vb = { x: 0, y: 0, w: W, h: H };
  var mode = "after";
  var circles = [];
  var selected = null;

  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]); }
    if (parent) parent.appendChild(e);
    return e;
  }

  var defs = el("defs", {}, svg);
  var clip = el("clipPath", { id: "fm-swipe-clip" }, defs);
  var clipRect = el("rect", { x: 0, y: 0, width: W, height: H }, clip);
  var gImg = el("g", { id: "images" }, svg);
  el("rect", { x: 0, y: 0, width: W, height: H, fill: "#2b323c" }, gImg);
  function image(key) {
    if (!D.images[key]) return null;
    return el("image", { href: D.images[key], x: 0, y: 0, width: W, height: H,
      preserveAspectRatio: "none", id: "img-" + key }, gImg);
  }
  var imgB = image("before");
  var imgA = image("after");

  /* ---------- layers ---------- */
  var list = document.getElementById("layers");
  D.layers.forEach(function (L, li) {
    var g = el("g", { "class": "layer", "data-layer": L.name }, svg);
    g.style.display = L.visible ? "" : "none";
    L.features.forEach(function (f, fi) {
      var node;
      var c = f.c || L.colour;
      if (typeof f.g === "string") {
        var closed = f.g.charAt(f.g.length - 1) === "Z";
        node = el("path", { d: f.g, "class": "f", stroke: c, "stroke-width": L.width,
          fill: closed ? c : "none", "fill-opacity": closed ? L.fill_opacity : 0,
          "fill-rule": "evenodd", "vector-effect": "non-scaling-stroke",
          "stroke-linecap": "round", "stroke-linejoin": "round" }, g);
      } else {
        node = el("circle", { cx: f.g[0], cy: f.g[1], r: 3, "class": "f", fill: c,
          stroke: "#111", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }, g);
        circles.push(node);
      }
      node.setAttribute("data-l", li);
      node.setAttribute("data-f", fi);
    });
    var item = document.createElement("li");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !!L.visible;
    box.id = "layer-" + li;
    box.setAttribute("data-layer", L.name);
    box.addEventListener("change", function () { g.style.display = box.checked ? "" : "none"; });
    var lab = document.createElement("label");
    lab.htmlFor = box.id;
    var sw = document.createElement("i");
    sw.className = "sw";
    sw.style.background = L.colour;
    lab.appendChild(sw);
    lab.appendChild(document.createTextNode(L.label));
    var cnt = document.createElement("span");
    cnt.className = "cnt";
    cnt.textContent = String(L.features.length);
    item.appendChild(box);
    item.appendChild(lab);
    item.appendChild(cnt);
    list.appendChild(item);
  });
  if (!D.layers.length) {
    var none = document.createElement("li");
    none.textContent = "No findings layers.";
    list.appendChild(none);
  }

  /* ---------- attributes ---------- */
  var attrs = document.getElementById("attributes");
  function row(table, k, v) {
    var tr = document.createElement("tr");
    var th = document.createElement("th");
    th.textContent = k;
    var td = document.createElement("td");
    if (k === "evidence" && typeof v === "string") {
      var pre = document.createElement("pre");
      try { pre.textContent = JSON.stringify(JSON.parse(v), null, 1); } catch (e) { pre.textContent = v; }
      td.appendChild(pre);
    } else {
      td.textContent = v === null || v === undefined ? "\u2014" : String(v);
    }
    tr.appendChild(th);
    tr.appendChild(td);
    table.appendChild(tr);
  }
  function showFeature(node) {
    var L = D.layers[+node.getAttribute("data-l")];
    var f = L.features[+node.getAttribute("data-f")];
    if (selected) selected.classList.remove("sel");
    selected = node;
    node.classList.add("sel");
    attrs.textContent = "";
    var table = document.createElement("table");
    table.id = "attr-table";
    row(table, "layer", L.label);
    for (var k in f.p) { if (Object.prototype.hasOwnProperty.call(f.p, k)) row(table, k, f.p[k]); }
    attrs.appendChild(table);
  }

  /* ---------- view ---------- */
  function size() { return { w: svg.clientWidth || 800, h: svg.clientHeight || 600 }; }
  function mpp() { return vb.w / size().w; }
  function fitBox(x, y, w, h) {
    var s = size();
    var k = Math.max(w / s.w, h / s.h);
    vb.w = s.w * k; vb.h = s.h * k;
    vb.x = x + w / 2 - vb.w / 2; vb.y = y + h / 2 - vb.h / 2;
    apply();
  }
  function nice(m) {
    var e = Math.pow(10, Math.floor(Math.log10(m)));
    var c = [5, 2, 1];
    for (var i = 0; i < c.length; i++) { if (c[i] * e <= m) return c[i] * e; }
    return e;
  }
  var bar = document.getElementById("scalebar-bar");
  var barText = document.getElementById("scalebar-text");
  var handle = document.getElementById("swipe-handle");
  var slider = document.getElementById("swipe");
  function apply() {
    svg.setAttribute("viewBox", vb.x + " " + vb.y + " " + vb.w + " " + vb.h);
    var m = mpp();
    var len = nice(m * 120);
    bar.style.width = (len / m).toFixed(1) + "px";
    barText.textContent = len >= 1000 ? len / 1000 + " km" : len + " m";
    for (var i = 0; i < circles.length; i++) circles[i].setAttribute("r", 6 * m);
    var xs = (+slider.value / 100) * size().w;
    var mx = vb.x + xs * m;
    clipRect.setAttribute("x", mx);
    clipRect.setAttribute("width", Math.max(0, vb.x + vb.w - mx + W));
    clipRect.setAttribute("y", vb.y - H);
    clipRect.setAttribute("height", vb.h + 2 * H);
    handle.style.left = xs + "px";
  }
  function zoomAt(f, sx, sy) {
    var m = mpp();
    var nw = vb.w * f;
    if (nw < 15 || nw > 6 * Math.max(W, H)) return;
    var mx = vb.x + sx * m, my = vb.y + sy * m;
    vb.w = nw; vb.h *= f;
    vb.x = mx - sx * (m * f); vb.y = my - sy * (m * f);
    apply();
  }
  document.getElementById("north").style.transform = "rotate(" + (D.geo.north_deg || 0) + "deg)";

  /* ---------- images ---------- */
  var label = document.getElementById("image-label");
  function setMode(m) {
    mode = m;
    if (imgB) imgB.style.display = m === "after" && imgA ? "none" : "";
    if (imgA) {
      imgA.style.display = m === "before" && imgB ? "none" : "";
      if (m === "swipe") imgA.setAttribute("clip-path", "url(#fm-swipe-clip)");
      else imgA.removeAttribute("clip-path");
    }
    slider.disabled = m !== "swipe";
    handle.hidden = m !== "swipe";
    label.textContent = m === "swipe"
      ? "Left: before (" + D.labels.before + "). Right: after (" + D.labels.after + ")."
      : "Showing " + m + " image, " + D.labels[m] + ".";
    apply();
  }
  Array.prototype.forEach.call(document.querySelectorAll("#image-mode input"), function (r) {
    r.addEventListener("change", function () { if (r.checked) setMode(r.value); });
  });
  slider.addEventListener("input", apply);

  /* ---------- interaction ---------- */
  var drag = null;
  map.addEventListener("pointerdown", function (e) {
    if (e.button !== 0 || e.target.closest(".zoom")) return;
    drag = { x: e.clientX, y: e.clientY, vx: vb.x, vy: vb.y, moved: 0, target: e.target };
    map.setPointerCapture(e.pointerId);
  });
  map.addEventListener("pointermove", function (e) {
    var r = svg.getBoundingClientRect();
    var m = mpp();
    var x = vb.x + (e.clientX - r.left) * m, y = vb.y + (e.clientY - r.top) * m;
    var lon = D.geo.lon[0] + D.geo.lon[1] * x + D.geo.lon[2] * y;
    var lat = D.geo.lat[0] + D.geo.lat[1] * x + D.geo.lat[2] * y;
    document.getElementById("coords").textContent = lat.toFixed(5) + ", " + lon.toFixed(5);
    if (!drag) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.moved = Math.max(drag.moved, Math.abs(dx) + Math.abs(dy));
    if (drag.moved > 3) {
      map.classList.add("dragging");
      vb.x = drag.vx - dx * m; vb.y = drag.vy - dy * m;
      apply();
    }
  });
  map.addEventListener("pointerup", function () {
    if (drag && drag.moved <= 3) {
      var t = drag.target.closest ? drag.target.closest(".f") : null;
      if (t) showFeature(t);
    }
    drag = null;
    map.classList.remove("dragging");
  });
  map.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = svg.getBoundingClientRect();
    zoomAt(Math.exp(e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  function centreZoom(f) { var s = size(); zoomAt(f, s.w / 2, s.h / 2); }
  document.getElementById("zoom-in").addEventListener("click", function () { centreZoom(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { centreZoom(2); });
  document.getElementById("zoom-reset").addEventListener("click", function () { fitBox(0, 0, W, H); });
  map.addEventListener("keydown", function (e) {
    if (e.key === "+" || e.key === "=") centreZoom(0.7);
    else if (e.key === "-") centreZoom(1 / 0.7);
    else if (e.key === "0") fitBox(0, 0, W, H);
  });
  window.addEventListener("resize", function () {
    var s = size();
    var m = mpp();
    var cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2;
    vb.w = s.w * m; vb.h = s.h * m; vb.x = cx - vb.w / 2; vb.y = cy - vb.h / 2;
    apply();
  });
  Array.prototype.forEach.call(document.querySelectorAll("img[data-site]"), function (img) {
    img.addEventListener("click", function () {
      var b = D.sites[+img.getAttribute("data-site")];
      if (!b) return;
      map.scrollIntoView({ behavior: "smooth", block: "center" });
      fitBox(b[0], b[1], b[2], b[2]);
    });
  });

  fitBox(0, 0, W, H);
  setMode(imgA ? "after" : "before");
})();
