// Sortable, filterable tables for the skinbench site: no dependencies, works from file://.
// A header cell sorts its column (click again to reverse); numbers sort by the cell's
// data-sort value, text by its content. An <input data-filter-for="ID"> keeps the rows of
// table ID that contain every word typed.
"use strict";

function cellKey(row, index, numeric) {
  const cell = row.cells[index];
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  const value = parseFloat(raw);
  return Number.isNaN(value) ? null : value;
}

function compare(a, b, numeric) {
  if (a === b) return 0;
  if (a === null) return 1;  // missing values last, whatever the direction
  if (b === null) return -1;
  return numeric ? a - b : a.localeCompare(b);
}

function sortBy(table, header) {
  const index = header.cellIndex;
  const numeric = header.dataset.type === "number";
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).map((row, order) => ({ row, order, key: cellKey(row, index, numeric) }));
  rows.sort((x, y) => {
    if (x.key === null || y.key === null) return compare(x.key, y.key, numeric) || x.order - y.order;
    return (ascending ? 1 : -1) * compare(x.key, y.key, numeric) || x.order - y.order;
  });
  rows.forEach(({ row }) => body.appendChild(row));
  for (const other of header.parentNode.cells) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
}

function filterRows(table, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  for (const row of table.tBodies[0].rows) {
    const text = row.textContent.toLowerCase();
    row.hidden = !words.every((word) => text.includes(word));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.sortable")) {
    for (const header of table.tHead.rows[0].cells) {
      header.tabIndex = 0;
      header.addEventListener("click", () => sortBy(table, header));
      header.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, header); }
      });
    }
  }
  for (const input of document.querySelectorAll("input[data-filter-for]")) {
    const table = document.getElementById(input.dataset.filterFor);
    if (table) input.addEventListener("input", () => filterRows(table, input.value));
  }
});
