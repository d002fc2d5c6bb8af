<?php
/**
 * The notices' wording, in plain words for a non-technical ops team.
 *
 * Everything here is plain text (the caller escapes it). What it quotes from
 * the database (the pause's cause, an incident's summary) is written by the
 * sidecar with ids, counts, status codes and categories, never a submitted
 * value, and is cut to MAX_QUOTE characters.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Title and text of each notice.
 */
final class FormRelay_Notice_Text {

	const MAX_QUOTE = 200;

	/**
	 * Delivery paused; a 401/403 (sticky) pause needs a person.
	 *
	 * @param array $breaker The pause row (paused, sticky, cause, paused_at ...).
	 * @return array{title: string, text: string}
	 */
	public static function paused( array $breaker ) {
		$since = self::when( isset( $breaker['paused_at'] ) ? (string) $breaker['paused_at'] : '' );
		$cause = self::quote( isset( $breaker['cause'] ) ? (string) $breaker['cause'] : '' );
		if ( ! empty( $breaker['sticky'] ) ) {
			return array(
				'title' => __( 'FormRelay: delivery is paused and needs a person.', 'formrelay-bridge' ),
				/* translators: 1: when, 2: the partner's refusal (a status code and category). */
				'text'  => sprintf( __( 'The partner refused FormRelay\'s token (%2$s) since %1$s. Fix the partner token (FORMRELAY_PARTNER_TOKEN of the sidecar), then press Resume on the FormRelay page. Submissions are stored and wait.', 'formrelay-bridge' ), $since, $cause ),
			);
		}
		return array(
			'title' => __( 'FormRelay: delivery is paused.', 'formrelay-bridge' ),
			/* translators: 1: when, 2: why (a status code and category). */
			'text'  => sprintf( __( 'Sending to the partner stopped since %1$s (%2$s). FormRelay checks the partner by itself and resumes when it answers; submissions are stored and wait.', 'formrelay-bridge' ), $since, $cause ),
		);
	}

	/**
	 * Jobs failed since the user last looked.
	 *
	 * @param int  $count  How many (capped).
	 * @param bool $looked Whether the user ever opened the FormRelay page.
	 * @return array{title: string, text: string}
	 */
	public static function failed( $count, $looked ) {
		$number = FormRelay_Notice_State::format_count( $count );
		return array(
			/* translators: %s: number of jobs. */
			'title' => sprintf( _n( 'FormRelay: %s submission could not be delivered.', 'FormRelay: %s submissions could not be delivered.', $count, 'formrelay-bridge' ), $number ),
			'text'  => $looked
				? __( 'They failed since you last looked and need someone to retry or cancel them.', 'formrelay-bridge' )
				: __( 'They need someone to retry or cancel them.', 'formrelay-bridge' ),
		);
	}

	/**
	 * No live worker: the sidecar is down (or all its workers are).
	 *
	 * @param array $state FormRelay_Notice_State::read().
	 * @return array{title: string, text: string}
	 */
	public static function sidecar_down( array $state ) {
		$last = null === $state['last_seen']
			? __( 'No worker heartbeat was ever recorded.', 'formrelay-bridge' )
			/* translators: %s: when. */
			: sprintf( __( 'The last worker heartbeat was at %s.', 'formrelay-bridge' ), self::when( $state['last_seen'] ) );
		$waiting = $state['waiting'] > 0
			/* translators: %s: number of submissions. */
			? sprintf( _n( '%s submission is stored and waits.', '%s submissions are stored and wait.', $state['waiting'], 'formrelay-bridge' ), FormRelay_Notice_State::format_count( $state['waiting'] ) )
			: __( 'New submissions are stored and wait.', 'formrelay-bridge' );
		return array(
			'title' => __( 'FormRelay: the sidecar is not running.', 'formrelay-bridge' ),
			'text'  => $last . ' ' . $waiting . ' ' . __( 'Start the sidecar (formrelay worker, or formrelay run) to deliver them.', 'formrelay-bridge' ),
		);
	}

	/**
	 * Any other open incident: its summary.
	 *
	 * @param array $incident id, kind, summary, opened_at.
	 * @return array{title: string, text: string}
	 */
	public static function incident( array $incident ) {
		return array(
			/* translators: %s: the incident's kind, e.g. backlog. */
			'title' => sprintf( __( 'FormRelay (%s):', 'formrelay-bridge' ), str_replace( '_', ' ', sanitize_key( (string) $incident['kind'] ) ) ),
			/* translators: 1: the incident's summary, 2: when it began. */
			'text'  => sprintf( __( '%1$s (since %2$s)', 'formrelay-bridge' ), self::quote( (string) $incident['summary'] ), self::when( (string) $incident['opened_at'] ) ),
		);
	}

	/**
	 * A UTC database time as "2026-12-01 13:05 UTC (5 mins ago)"; '' when there is none.
	 *
	 * @param string $utc 'Y-m-d H:i:s[.u]' or ISO 8601 with T, UTC.
	 * @return string
	 */
	public static function when( $utc ) {
		$utc  = substr( str_replace( 'T', ' ', $utc ), 0, 19 );
		$time = '' === $utc ? false : strtotime( $utc . ' UTC' );
		if ( false === $time ) {
			return '';
		}
		/* translators: 1: date and time (UTC), 2: e.g. "5 mins". */
		return sprintf( __( '%1$s UTC (%2$s ago)', 'formrelay-bridge' ), substr( $utc, 0, 16 ), human_time_diff( $time, time() ) );
	}

	/**
	 * Stored text cut to MAX_QUOTE characters, control characters removed.
	 *
	 * @param string $text Text from the database.
	 * @return string
	 */
	private static function quote( $text ) {
		$text = trim( (string) preg_replace( '/[\x00-\x1f\x7f]+/', ' ', $text ) );
		return mb_strlen( $text ) > self::MAX_QUOTE ? mb_substr( $text, 0, self::MAX_QUOTE ) . '...' : $text;
	}
}
