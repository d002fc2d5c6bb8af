<?php
/**
 * What the wp-admin notices need, read from MySQL in two queries.
 *
 * The notices must work with the sidecar down, so they read the FormRelay
 * tables directly: the pause row (`formrelay_meta` name `breaker`, the JSON of
 * sidecar/breaker.py's Breaker), the workers' heartbeats (a worker is live
 * while it has missed fewer than 2 of its own beats plus 15 s: the rule of
 * sidecar/store/workers.py), whether jobs wait, how many jobs failed since a
 * time, and the open incidents (migration 0007). Query one is a single row of
 * subselects, each on a primary key, an index or the tiny workers table; the
 * counts stop at COUNT_CAP so a long backlog costs no more than a short one.
 * Query two lists the open incidents through the open_key unique index.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The delivery state as the notices read it.
 */
final class FormRelay_Notice_State {

	const COUNT_CAP         = 1000;
	const GONE_AFTER_BEATS  = 2;  // As sidecar/store/workers.py.
	const GONE_MARGIN_SECS  = 15;
	const WAITING_STATUSES  = array( 'pending', 'retrying', 'processing' );
	const MAX_OPEN_INCIDENT = 20;

	/**
	 * The state; null when the tables cannot be read (not installed, database trouble).
	 *
	 * @param string $failed_since UTC 'Y-m-d H:i:s' (the user's last look), '' for ever.
	 * @return array{breaker: array, workers: int, live_workers: int, last_seen: string|null,
	 *               waiting: int, failed_new: int, incidents: array[]}|null
	 */
	public static function read( $failed_since ) {
		global $wpdb;
		$meta      = $wpdb->prefix . 'formrelay_meta';
		$workers   = $wpdb->prefix . 'formrelay_workers';
		$jobs      = $wpdb->prefix . 'formrelay_jobs';
		$incidents = $wpdb->prefix . 'formrelay_incidents';
		$since     = '' === $failed_since ? '1970-01-01 00:00:00' : $failed_since;
		$suppress  = $wpdb->suppress_errors( true );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery -- the plugin's own tables; never cached: this is live state.
		$row  = $wpdb->get_row( $wpdb->prepare( "SELECT (SELECT CONCAT(name, ' ', value) FROM `{$meta}` WHERE name = %s OR name LIKE %s ORDER BY value LIKE %s DESC, value LIKE %s DESC, name = %s DESC, name LIMIT 1) AS breaker, (SELECT COUNT(*) FROM `{$workers}`) AS workers, (SELECT COUNT(*) FROM `{$workers}` WHERE beat_seconds = 0 OR last_seen >= UTC_TIMESTAMP(3) - INTERVAL (%d * beat_seconds + %d) SECOND) AS live_workers, (SELECT MAX(last_seen) FROM `{$workers}`) AS last_seen, (SELECT COUNT(*) FROM (SELECT 1 FROM `{$jobs}` WHERE status IN (%s, %s, %s) LIMIT %d) AS w) AS waiting, (SELECT COUNT(*) FROM (SELECT 1 FROM `{$jobs}` WHERE failed_at > %s AND status = %s LIMIT %d) AS f) AS failed_new", 'breaker', $wpdb->esc_like( 'breaker:' ) . '%', '%"paused": true%', '%"sticky": true%', 'breaker', self::GONE_AFTER_BEATS, self::GONE_MARGIN_SECS, 'pending', 'retrying', 'processing', self::COUNT_CAP, $since, 'failed', self::COUNT_CAP ), ARRAY_A );
		$open = null === $row ? null : $wpdb->get_results( $wpdb->prepare( "SELECT id, kind, severity, summary, opened_at FROM `{$incidents}` WHERE open_key IS NOT NULL ORDER BY id LIMIT %d", self::MAX_OPEN_INCIDENT ), ARRAY_A );
		// phpcs:enable
		$wpdb->suppress_errors( $suppress );
		if ( ! is_array( $row ) ) {
			return null;
		}
		$breaker = self::pause_of( $row['breaker'] );
		return array(
			'breaker'      => is_array( $breaker ) ? $breaker : array(),
			'workers'      => (int) $row['workers'],
			'live_workers' => (int) $row['live_workers'],
			'last_seen'    => is_string( $row['last_seen'] ) && '' !== $row['last_seen'] ? $row['last_seen'] : null,
			'waiting'      => (int) $row['waiting'],
			'failed_new'   => (int) $row['failed_new'],
			// An older schema without the incidents table: the other notices still work.
			'incidents'    => is_array( $open ) ? $open : array(),
		);
	}

	/**
	 * The pause row the query chose ("name json": a paused one first, one needing a
	 * person before others, the default partner's `breaker` before a named partner's
	 * `breaker:<name>`), its cause naming a named partner; null when unreadable.
	 *
	 * @param mixed $chosen The row's name, a space, and its JSON value.
	 * @return array|null
	 */
	private static function pause_of( $chosen ) {
		if ( ! is_string( $chosen ) || false === strpos( $chosen, ' ' ) ) {
			return null;
		}
		list( $name, $json ) = explode( ' ', $chosen, 2 );
		$state               = json_decode( $json, true );
		if ( is_array( $state ) && 'breaker' !== $name && ! empty( $state['paused'] ) ) {
			$state['cause'] = 'partner ' . substr( $name, strlen( 'breaker:' ) ) . ': ' . ( $state['cause'] ?? '' );
		}
		return is_array( $state ) ? $state : null;
	}

	/**
	 * A count for people: "1,000+" at the cap.
	 *
	 * @param int $count A capped count.
	 * @return string
	 */
	public static function format_count( $count ) {
		return $count >= self::COUNT_CAP ? number_format_i18n( self::COUNT_CAP ) . '+' : number_format_i18n( $count );
	}
}
