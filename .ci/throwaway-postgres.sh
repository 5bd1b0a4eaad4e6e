# Sourced by CI scripts: starts a throwaway PostgreSQL on a free loopback port, with password
# authentication (scram-sha-256) as on the servers users run, under "$1" (a folder it creates), and
# stops it with pg_stop. The folder above "$1" must be readable by the postgres user. Sets pg_port and pg_connection (the superuser's Npgsql connection string).
pg_root=$1
pg_bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pg_bindir/initdb" ] || pg_bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
pg_runas=(); [ "$(id -u)" -eq 0 ] && pg_runas=(su postgres -c)
pg_as_owner() { if [ ${#pg_runas[@]} -gt 0 ]; then "${pg_runas[@]}" "$*"; else bash -c "$*"; fi; }
mkdir -p "$pg_root" && chmod 755 "$pg_root" && { [ ${#pg_runas[@]} -eq 0 ] || chown postgres "$pg_root"; }
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)
pg_password=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
echo "$pg_password" > "$pg_root/pw" && chmod 644 "$pg_root/pw"
pg_as_owner "$pg_bindir/initdb -D $pg_root/data -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=$pg_root/pw -E UTF8 --no-sync" >/dev/null
rm -f "$pg_root/pw"
pg_as_owner "$pg_bindir/pg_ctl -D $pg_root/data -l $pg_root/log -o '-p $pg_port -k $pg_root -c listen_addresses=127.0.0.1 -c max_connections=200' -w start" >/dev/null
pg_stop() { pg_as_owner "$pg_bindir/pg_ctl -D $pg_root/data -m immediate stop" >/dev/null 2>&1 || true; }
pg_connection="Host=127.0.0.1;Port=$pg_port;Username=postgres;Password=$pg_password;Database=postgres"
