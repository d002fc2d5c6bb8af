<?php
/**
 * `wp formrelay status`: the sidecar's GET /admin/v1/stats answer as lines of text.
 *
 * Counts, times, ids and the pause's cause (a status code and category, written
 * by the sidecar without a submitted value); nothing else is in that answer.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Formats the stats.
 */
final class FormRelay_CLI_Status {

	const STATUSES = array( 'pending', 'processing', 'retrying', 'completed', 'failed', 'cancelled' );

	/**
	 * The lines, in the order an on-call person reads them.
	 *
	 * @param array $stats GET /admin/v1/stats (docs/dashboard.md).
	 * @return string[]
	 */
	public static function lines( array $stats ) {
		$pause   = isset( $stats['pause'] ) && is_array( $stats['pause'] ) ? $stats['pause'] : array();
		$lines   = array( 'Delivery: ' . self::delivery( $pause ) );
		$oldest  = isset( $stats['oldest_waiting_seconds'] ) ? $stats['oldest_waiting_seconds'] : null;
		$lines[] = sprintf(
			'Waiting: %d%s',
			isset( $stats['waiting'] ) ? (int) $stats['waiting'] : 0,
			null === $oldest ? '' : sprintf( ' (the oldest for %s)', self::duration( (float) $oldest ) )
		);
		$counts  = isset( $stats['counts'] ) && is_array( $stats['counts'] ) ? $stats['counts'] : array();
		$parts   = array();
		foreach ( self::STATUSES as $status ) {
			$parts[] = $status . ' ' . ( isset( $counts[ $status ] ) ? (int) $counts[ $status ] : 0 );
		}
		$lines[] = 'Jobs: ' . implode( ', ', $parts );
		$workers = isset( $stats['workers'] ) && is_array( $stats['workers'] ) ? $stats['workers'] : array();
		$silent  = count( array_filter( array_column( $workers, 'silent' ) ) );
		$lines[] = sprintf( 'Workers: %d live, %d silent', count( $workers ) - $silent, $silent );
		foreach ( $workers as $worker ) {
			$lines[] = sprintf(
				'  %s  %s  %sx%d  last seen %s ago%s',
				isset( $worker['id'] ) ? (string) $worker['id'] : '?',
				isset( $worker['version'] ) ? (string) $worker['version'] : '?',
				isset( $worker['worker_type'] ) ? (string) $worker['worker_type'] : '?',
				isset( $worker['threads'] ) ? (int) $worker['threads'] : 0,
				self::duration( isset( $worker['seconds_since_seen'] ) ? (float) $worker['seconds_since_seen'] : 0.0 ),
				empty( $worker['silent'] ) ? '' : '  SILENT'
			);
		}
		if ( isset( $stats['delivery']['problem'] ) && '' !== (string) $stats['delivery']['problem'] ) {
			$lines[] = 'Problem: ' . (string) $stats['delivery']['problem'];
		}
		return $lines;
	}

	/**
	 * "running", or "PAUSED since ... (cause)" with what to do for a 401/403 pause.
	 *
	 * @param array $pause The stats' pause object.
	 * @return string
	 */
	private static function delivery( array $pause ) {
		if ( empty( $pause['paused'] ) ) {
			return 'running';
		}
		$text = sprintf(
			'PAUSED since %s UTC: %s',
			isset( $pause['since'] ) ? str_replace( 'T', ' ', (string) $pause['since'] ) : '?',
			isset( $pause['cause'] ) ? (string) $pause['cause'] : ''
		);
		if ( ! empty( $pause['sticky'] ) ) {
			return $text . '. Needs a person: fix the partner token, then run `wp formrelay resume`.';
		}
		return $text . ( empty( $pause['next_probe_at'] ) ? '' : sprintf( '. Next probe at %s UTC.', str_replace( 'T', ' ', (string) $pause['next_probe_at'] ) ) );
	}

	/**
	 * Seconds as "42 s", "7 min", "3 h".
	 *
	 * @param float $seconds Seconds.
	 * @return string
	 */
	private static function duration( $seconds ) {
		if ( $seconds < 120 ) {
			return sprintf( '%d s', (int) round( $seconds ) );
		}
		return $seconds < 7200 ? sprintf( '%d min', (int) round( $seconds / 60 ) ) : sprintf( '%d h', (int) round( $seconds / 3600 ) );
	}
}
