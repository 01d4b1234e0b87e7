"""Reading, mapping and validating spreadsheets of candidates for import.

* `reading`: detect the file's format by its content (CSV or XLSX), its encoding and delimiter,
  refuse malformed files and zip bombs, and stream its rows.
* `fields`: the candidate fields a column can be imported as, and guessing them from headers
  (LinkedIn, Greenhouse, Lever, Workable and generic exports).
* `rows`: turn one row of cells into candidate values, with a reason for every invalid cell.

The writing side (COPY into a staging table, merge, counters, resume) is
`candidates.services.imports`.
"""
