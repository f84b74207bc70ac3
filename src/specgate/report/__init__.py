"""What is drawn from a results document: text and Markdown tables (tables), series over k
(sweep), charts (charts), the report folder, terminal table and CI step summary (publish),
tracker JSON (export), and the published origin figures (origin)."""
