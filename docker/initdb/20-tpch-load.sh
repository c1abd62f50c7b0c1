#!/usr/bin/env bash
# Load the TPC-H CSV files (with a header row, as `tpchgen-cli csv` writes them) into the
# schema `tpch` made by 10-tpch-schema.sql, with psql's \copy, then ANALYZE so the planner's
# estimates (which queryref's size guard reads) are right.
#
# In the postgres image this runs once, on the first start of an empty data directory, with
# TPCH_DIR=/tpch (the `tpch-data` volume). It also works by hand against any server:
#   TPCH_DIR=data/tpch-csv PGHOST=127.0.0.1 PGUSER=postgres bash docker/initdb/20-tpch-load.sh
set -euo pipefail

dir="${TPCH_DIR:-/tpch}"
db="${POSTGRES_DB:-${PGDATABASE:-postgres}}"
user="${POSTGRES_USER:-${PGUSER:-postgres}}"

if [ ! -f "$dir/lineitem.csv" ]; then
  echo "20-tpch-load: no $dir/lineitem.csv; the tpch schema stays empty" >&2
  exit 1
fi
for table in region nation part supplier partsupp customer orders lineitem; do
  echo "20-tpch-load: loading tpch.$table"
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname "$db" \
    -c "\\copy tpch.$table FROM '$dir/$table.csv' WITH (FORMAT csv, HEADER true)"
done
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname "$db" -c "ANALYZE"
