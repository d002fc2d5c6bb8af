#!/bin/sh
# Write the secret files docker-compose.yml mounts, into ./secrets/ next to it:
# random values for every password and the shared secret, the Redis password and
# the sidecar's Redis URL from ONE value (they must agree). An existing file is
# never overwritten (a database password is also stored in the database: change
# both together, see deploy/compose/README.md). Prints file names, never values.
#
#   deploy/compose/make-secrets.sh [DIR]     DIR default: <repo>/secrets
#
# The partner's token is the one value it cannot invent: it is read from the
# terminal (not echoed), or from FORMRELAY_PARTNER_TOKEN when stdin is no terminal.
set -eu

dir=${1:-$(cd "$(dirname "$0")/../.." && pwd)/secrets}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"   # only the owner on the host; the files inside are 0644 (see below)

random_hex() {  # 32 random bytes as 64 hex digits: safe in a URL and in SQL strings
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

put() {  # name value: write the file unless it exists
  if [ -e "$dir/$1" ]; then
    echo "make-secrets: $1 exists, kept"
    return 0
  fi
  printf '%s\n' "$2" > "$dir/$1"
  # Compose outside Swarm bind-mounts the file as it is: the containers' own users
  # (www-data, mysql, redis, formrelay) must be able to read it; the 0700 directory
  # keeps everyone else on the host out.
  chmod 644 "$dir/$1"
  echo "make-secrets: $1 written"
}

put db_root_password "$(random_hex)"
put wordpress_db_password "$(random_hex)"
put formrelay_db_password "$(random_hex)"
put formrelay_shared_secret "$(random_hex)"
put wp_admin_password "$(random_hex)"

if [ -e "$dir/redis_password" ]; then
  redis=$(cat "$dir/redis_password")
elif [ -e "$dir/formrelay_redis_url" ]; then
  echo "make-secrets: formrelay_redis_url exists without redis_password: remove it to make both" >&2
  exit 1
else
  redis=$(random_hex)
fi
put redis_password "$redis"
put formrelay_redis_url "redis://:$redis@redis:6379/0"
case "$(cat "$dir/formrelay_redis_url")" in
  *":$redis@"*) ;;
  *) echo "make-secrets: formrelay_redis_url does not carry redis_password: the sidecar" \
          "would be refused by Redis" >&2; exit 1 ;;
esac

if [ ! -e "$dir/formrelay_partner_token" ]; then
  token=${FORMRELAY_PARTNER_TOKEN:-}
  if [ -z "$token" ] && [ -t 0 ]; then
    printf 'Partner API token (empty: none): ' >&2
    stty -echo 2>/dev/null || true
    IFS= read -r token || true
    stty echo 2>/dev/null || true
    echo >&2
  fi
  if [ -n "$token" ]; then
    put formrelay_partner_token "$token"
  else
    : > "$dir/formrelay_partner_token"
    chmod 644 "$dir/formrelay_partner_token"
    echo "make-secrets: formrelay_partner_token is EMPTY: write the token into it, or set" \
         "FORMRELAY_PARTNER_TOKEN_FILE= (empty) in .env for a partner that takes none"
  fi
else
  echo "make-secrets: formrelay_partner_token exists, kept"
fi
echo "make-secrets: the admin's password for wp-admin is in $dir/wp_admin_password"
