"""What is drawn from a results document: text and Markdown tables, charts against k, the summary and report folder, exports for trackers, the published origin figures."""
