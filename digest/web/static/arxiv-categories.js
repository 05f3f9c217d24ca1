// The "New on arXiv" checkboxes of the sign-up and preferences forms: ticking one adds its
// cat:<code> line to the topics, unticking removes that exact line, and typing in the topics ticks
// and unticks the boxes to match. The topics stay what the reader sees and what is stored; the live
// preview hears of each change. Without JavaScript the server applies the boxes the reader changed
// (digest/web/forms.py, merge_categories), to the same effect.
(function () {
  "use strict";
  var fieldset = document.querySelector("fieldset.categories[data-topics]");
  if (!fieldset) return;
  var topics = document.getElementById(fieldset.getAttribute("data-topics"));
  if (!topics) return;
  var boxes = Array.prototype.slice.call(fieldset.querySelectorAll("input[type=checkbox][name=categories]"));

  // The same test as forms.is_category_line: the line is exactly cat:<code>, blanks and case aside.
  function categoryLine(line, code) {
    return line.trim().toLowerCase() === ("cat:" + code).toLowerCase();
  }

  function lines() {
    return topics.value.replace(/\r\n?/g, "\n").split("\n");
  }

  function sync() {
    var current = lines();
    boxes.forEach(function (box) {
      box.checked = current.some(function (line) {
        return categoryLine(line, box.value);
      });
    });
  }

  function toggle(box) {
    var current = lines();
    var has = current.some(function (line) {
      return categoryLine(line, box.value);
    });
    if (box.checked && !has) {
      if (current.length && !current[current.length - 1].trim()) current.pop(); // a trailing blank line takes it
      current.push("cat:" + box.value);
    } else if (!box.checked) {
      current = current.filter(function (line) {
        return !categoryLine(line, box.value);
      });
    } else {
      return;
    }
    topics.value = current.join("\n");
    topics.dispatchEvent(new Event("input", { bubbles: true })); // the live preview, and sync()
  }

  boxes.forEach(function (box) {
    box.addEventListener("change", function () {
      toggle(box);
    });
  });
  topics.addEventListener("input", sync);
  sync(); // a restored page (back button) may bring the topics back without the boxes
})();
