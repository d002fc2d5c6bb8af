<?php
/**
 * "FormRelay sidecar unreachable": the REST routes' 503 and the page's notice.
 *
 * When the sidecar cannot be reached the REST routes answer 503
 * {"code": "formrelay_unreachable", "message": "FormRelay sidecar unreachable",
 * "data": {"status": 503, "last_heartbeat": time|null, "waiting": n, "reason": "..."}}
 * and the dashboard page prints the notice with the same data. `last_heartbeat`
 * and `waiting` are the only FormRelay queries PHP runs: capture keeps working
 * without the sidecar, and the notice says how much is waiting for it.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The unreachable error, its two queries, and its notice.
 */
final class FormRelay_Unreachable {

	const MAX_REASON = 300;

	/**
	 * The unreachable answer: 503, the last heartbeat and the number of waiting submissions.
	 *
	 * @param string $reason Why (an error from the HTTP library, or the sidecar's status).
	 * @return WP_Error
	 */
	public static function error( $reason ) {
		$state = self::queue_state();
		return new WP_Error(
			'formrelay_unreachable',
			'FormRelay sidecar unreachable',
			array(
				'status'         => 503,
				'last_heartbeat' => $state['last_heartbeat'],
				'waiting'        => $state['waiting'],
				'reason'         => self::shorten( $reason ),
			)
		);
	}

	/**
	 * The two queries PHP runs: the newest worker heartbeat and how many jobs wait.
	 *
	 * @return array{last_heartbeat: string|null, waiting: int|null} The heartbeat as UTC
	 *         ISO 8601 (2026-12-01T13:05:00.123), null when no worker was ever seen; waiting
	 *         null only when the table cannot be read.
	 */
	public static function queue_state() {
		global $wpdb;
		$workers  = $wpdb->prefix . 'formrelay_workers';
		$jobs     = $wpdb->prefix . 'formrelay_jobs';
		$suppress = $wpdb->suppress_errors( true );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery -- the plugin's own tables; never cached: this is live state.
		$last    = $wpdb->get_var( $wpdb->prepare( "SELECT MAX(last_seen) FROM `{$workers}` LIMIT %d", 1 ) );
		$waiting = $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM `{$jobs}` WHERE status IN (%s, %s, %s)", 'pending', 'retrying', 'processing' ) );
		// phpcs:enable
		$wpdb->suppress_errors( $suppress );
		return array(
			'last_heartbeat' => is_string( $last ) && '' !== $last ? str_replace( ' ', 'T', $last ) : null,
			'waiting'        => null === $waiting ? null : (int) $waiting,
		);
	}

	/**
	 * The "FormRelay sidecar unreachable" notice.
	 *
	 * @param mixed $data The unreachable error's data (last_heartbeat, waiting, reason).
	 * @return void
	 */
	public static function render_notice( $data ) {
		$data = is_array( $data ) ? $data : array();
		$last = isset( $data['last_heartbeat'] ) ? $data['last_heartbeat'] : null;
		if ( is_string( $last ) ) {
			$seen = strtotime( $last . 'Z' );
			$when = sprintf(
				/* translators: 1: date and time (UTC), 2: e.g. "5 mins". */
				__( '%1$s UTC (%2$s ago)', 'formrelay-bridge' ),
				substr( str_replace( 'T', ' ', $last ), 0, 19 ),
				false === $seen ? '?' : human_time_diff( $seen, time() )
			);
		} else {
			$when = __( 'never', 'formrelay-bridge' );
		}
		$waiting = isset( $data['waiting'] ) && null !== $data['waiting'] ? number_format_i18n( (int) $data['waiting'] ) : __( 'unknown', 'formrelay-bridge' );

		echo '<div class="notice notice-error formrelay-unreachable">';
		echo '<p><strong>' . esc_html__( 'FormRelay sidecar unreachable', 'formrelay-bridge' ) . '</strong></p>';
		echo '<p>' . esc_html__( 'Last worker heartbeat:', 'formrelay-bridge' ) . ' <span class="formrelay-last-heartbeat">' . esc_html( $when ) . '</span></p>';
		echo '<p>' . esc_html__( 'Submissions waiting:', 'formrelay-bridge' ) . ' <span class="formrelay-waiting">' . esc_html( $waiting ) . '</span>. '
			. esc_html__( 'New submissions are still queued; they are delivered once the sidecar runs again.', 'formrelay-bridge' ) . '</p>';
		if ( ! empty( $data['reason'] ) && is_string( $data['reason'] ) ) {
			echo '<p class="description formrelay-reason">' . esc_html__( 'Reason:', 'formrelay-bridge' ) . ' ' . esc_html( $data['reason'] ) . '</p>';
		}
		echo '</div>';
	}

	/**
	 * A reason cut to a sensible length, without control characters.
	 *
	 * @param string $reason Text.
	 * @return string
	 */
	private static function shorten( $reason ) {
		$reason = trim( preg_replace( '/[\x00-\x1f\x7f]+/', ' ', (string) $reason ) );
		return mb_strlen( $reason ) > self::MAX_REASON ? mb_substr( $reason, 0, self::MAX_REASON ) . '...' : $reason;
	}
}
