"""Reports: number formatting, markdown sections, figures; `write_report` writes the document."""
