// The sign-up form's live preview: as the reader types filters, the papers of the last days they
// would match, the matching words marked, and arXiv's new papers for lines naming a category or a
// source (cat:cs.CL). Everything is built from text nodes and <mark>
// elements, never from HTML. Without JavaScript the form works as before (the box stays hidden).
(function () {
  "use strict";
  var topics = document.getElementById("topics");
  var box = document.getElementById("topics-preview");
  if (!topics || !box || !topics.form || !window.fetch || !window.AbortController) return;
  var status = box.querySelector(".live-status");
  var results = box.querySelector(".live-results");
  var token = topics.form.querySelector("input[name=csrf_token]");
  var url = box.getAttribute("data-url");
  var timer = null;
  var pending = null;
  var shown = null; // the topics the box shows

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // [["Scaling ", false], ["video", true]] -> text nodes and <mark>s appended to parent
  function marked(parent, segments) {
    (segments || []).forEach(function (segment) {
      var text = String(segment[0]);
      parent.appendChild(segment[1] ? el("mark", null, text) : document.createTextNode(text));
    });
    return parent;
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function show(message, nodes) {
    status.textContent = message;
    results.replaceChildren.apply(results, nodes || []);
    box.hidden = false;
  }

  function paper(p) {
    var item = el("li", "paper");
    var title = el("a", "paper-title");
    if (typeof p.url === "string" && p.url.indexOf("https://") === 0) title.href = p.url;
    title.rel = "noopener noreferrer";
    item.appendChild(marked(title, p.title));
    var meta = el("p", "paper-meta");
    // one of arXiv's new papers: its categories (those asked for marked) where a trending one has its upvotes
    if (p.categories) meta.appendChild(marked(el("span", "paper-categories"), p.categories));
    else meta.appendChild(el("span", "votes", "▲ " + p.upvotes));
    if (p.authors && p.authors.length) meta.appendChild(marked(el("span"), p.authors));
    if (p.org && p.org.length) meta.appendChild(marked(el("span"), p.org));
    item.appendChild(meta);
    if (p.excerpt && p.excerpt.length) item.appendChild(marked(el("p", "live-excerpt"), p.excerpt));
    if (p.matched) {
      var line = el("p", "matched", "matched ");
      line.appendChild(el("code", null, p.matched));
      item.appendChild(line);
    }
    return item;
  }

  // Lines kept but matching papers on any topic ("a OR b": stop words only), one item each
  function hints(data) {
    if (!data.hints || !data.hints.length) return [];
    var list = el("ul", "field-hints live-hints");
    data.hints.forEach(function (hint) {
      list.appendChild(el("li", null, hint.message));
    });
    return [list];
  }

  // The lines naming a category or a source, on arXiv's new papers of the same days
  // (its days may end a day later than the trending ones: arXiv announces before Daily Papers fill up)
  function arxiv(section) {
    var nodes = [el("h3", "live-section", "New on arXiv")];
    var last = new Date(section.last_day + "T00:00:00Z");
    var days = Math.round((last - Date.parse(section.first_day)) / 86400000) + 1;
    var when = days > 1 ? "in the last " + days + " days" : "on " + last.toLocaleDateString("en-GB", { day: "numeric", month: "long", timeZone: "UTC" });
    var summary =
      section.matched + " of the " + plural(section.considered, "paper") + " arXiv announced as new " + when + (section.matched === 1 ? " matches" : " match");
    if (section.matched > section.papers.length) summary += "; the first " + section.papers.length + ":";
    else summary += section.papers.length ? ":" : ".";
    nodes.push(el("p", "live-status", summary));
    if (section.papers.length) {
      var list = el("ol", "papers live-papers live-arxiv");
      section.papers.forEach(function (p) {
        list.appendChild(paper(p));
      });
      nodes.push(list);
    }
    return nodes;
  }

  function render(data) {
    // the hints the page came with describe the topics it was sent; the box now says what these match
    var stale = document.getElementById("topics-hint");
    if (stale) stale.hidden = true;
    if (!data.ok) {
      var list = el("ul", "field-errors");
      (data.errors || []).forEach(function (e) {
        list.appendChild(el("li", null, e.message));
      });
      if (data.more_errors) list.appendChild(el("li", null, "…and " + plural(data.more_errors, "more problem")));
      show("Fix these to see what your filters match:", [list]);
      return;
    }
    if (!data.considered) {
      show("No papers yet to try your filters on.", hints(data));
      return;
    }
    var nodes = hints(data);
    var days = Math.round((Date.parse(data.last_day) - Date.parse(data.first_day)) / 86400000) + 1;
    var summary =
      data.matched + " of the " + plural(data.considered, "paper") + " of the last " + plural(days, "day") + (data.matched === 1 ? " matches" : " match");
    if (data.matched > data.papers.length) summary += "; the " + data.papers.length + " most upvoted:";
    else summary += data.papers.length ? ":" : ".";
    if (data.papers.length) {
      var papers = el("ol", "papers live-papers");
      data.papers.forEach(function (p) {
        papers.appendChild(paper(p));
      });
      nodes.push(papers);
    }
    if (data.misses.length) {
      var misses = el("ul", "live-misses");
      data.misses.forEach(function (miss) {
        var item = el("li", null, (miss.line ? "Line " + miss.line + " " : ""));
        item.appendChild(el("code", null, miss.filter));
        item.appendChild(document.createTextNode(" matched nothing: " + miss.reason + "."));
        misses.appendChild(item);
      });
      nodes.push(misses);
    }
    if (data.arxiv) nodes.push.apply(nodes, arxiv(data.arxiv));
    show(summary, nodes);
  }

  function update() {
    var text = topics.value;
    if (text === shown) return;
    if (pending) pending.abort();
    if (!text.trim()) {
      shown = text;
      box.hidden = true;
      return;
    }
    var request = (pending = new AbortController());
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
      body: JSON.stringify({ topics: text }),
      signal: request.signal,
    })
      .then(function (response) {
        if (response.status === 429) throw new Error("busy");
        if (!response.ok) throw new Error("failed");
        return response.json();
      })
      .then(function (data) {
        shown = text;
        render(data);
      })
      .catch(function (error) {
        if (error.name === "AbortError") return;
        show(error.message === "busy" ? "The preview pauses for a moment: too many requests." : "The preview is not available right now.", []);
      })
      .finally(function () {
        if (pending === request) pending = null;
      });
  }

  topics.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(update, 350);
  });
  if (topics.value.trim()) update();
})();
