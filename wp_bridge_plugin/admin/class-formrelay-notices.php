<?php
/**
 * FormRelay's notices on every wp-admin screen, for the people who never open its page.
 *
 * For users with the dashboard's capability only (anyone else: no query at
 * all), read from MySQL (FormRelay_Notice_State: two queries), so they work
 * with the sidecar down:
 *
 * - delivery paused (the pause row); a 401/403 pause says it needs a person;
 * - jobs failed since this user last opened the FormRelay page (user meta
 *   LOOKED_KEY, UTC), with a link to the failed jobs list;
 * - the sidecar down: no live worker heartbeat, or none at all while jobs wait;
 * - every other open incident, with its summary.
 *
 * A notice backed by an open incident can be dismissed (user meta DISMISSED_KEY
 * holds the incident ids; FormRelay_Notice_Dismiss); a new incident is a new id
 * and shows again. The failed-jobs notice goes when the user looks (opens any
 * FormRelay view) or dismisses it, until a job fails after that.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Renders the notices.
 */
final class FormRelay_Notices {

	const LOOKED_KEY    = 'formrelay_last_looked';
	const DISMISSED_KEY = 'formrelay_dismissed_incidents';
	const PAGE_SCREEN   = 'toplevel_page_formrelay';
	// Incident kinds that have their own notice (shown from the live state, not the row).
	const OWN_NOTICE = array( 'paused', 'failed' );

	/**
	 * Hooks (wp-admin only).
	 *
	 * @return void
	 */
	public static function register() {
		add_action( 'admin_notices', array( __CLASS__, 'render' ) );
		add_action( 'load-' . self::PAGE_SCREEN, array( __CLASS__, 'mark_looked' ) );
		FormRelay_Notice_Dismiss::register();
	}

	/**
	 * Opening the FormRelay page is looking: failures until now are seen.
	 *
	 * @return void
	 */
	public static function mark_looked() {
		if ( current_user_can( FormRelay_Dashboard::CAPABILITY ) ) {
			update_user_meta( get_current_user_id(), self::LOOKED_KEY, gmdate( 'Y-m-d H:i:s' ) );
		}
	}

	/**
	 * The `admin_notices` callback.
	 *
	 * @return void
	 */
	public static function render() {
		if ( ! current_user_can( FormRelay_Dashboard::CAPABILITY ) ) {
			return;
		}
		$user   = get_current_user_id();
		$looked = (string) get_user_meta( $user, self::LOOKED_KEY, true );
		$state  = FormRelay_Notice_State::read( $looked );
		if ( null === $state ) {
			return;
		}
		$dismissed = array_map( 'absint', (array) get_user_meta( $user, self::DISMISSED_KEY, true ) );
		$by_kind   = array();
		foreach ( $state['incidents'] as $incident ) {
			$by_kind[ $incident['kind'] ] = $incident;
		}

		if ( ! empty( $state['breaker']['paused'] ) ) {
			self::notice( FormRelay_Notice_Text::paused( $state['breaker'] ), empty( $state['breaker']['sticky'] ) ? 'warning' : 'error', 'paused', $by_kind['paused'] ?? null, $dismissed );
		}
		if ( $state['failed_new'] > 0 ) {
			self::failed_notice( $state['failed_new'], '' !== $looked );
		}
		$down = 0 === $state['live_workers'] && ( $state['workers'] > 0 || $state['waiting'] > 0 );
		if ( $down ) {
			self::notice( FormRelay_Notice_Text::sidecar_down( $state ), 'error', 'sidecar-down', $by_kind['no_worker'] ?? null, $dismissed );
		}
		foreach ( $state['incidents'] as $incident ) {
			if ( in_array( $incident['kind'], self::OWN_NOTICE, true ) || ( $down && 'no_worker' === $incident['kind'] ) ) {
				continue;
			}
			$type = 'critical' === strtolower( (string) $incident['severity'] ) ? 'error' : 'warning';
			self::notice( FormRelay_Notice_Text::incident( $incident ), $type, 'incident', $incident, $dismissed );
		}
	}

	/**
	 * One notice; dismissible when an open incident backs it.
	 *
	 * @param array{title: string, text: string} $words     Plain text.
	 * @param string                             $type      error|warning.
	 * @param string                             $kind      A class suffix (formrelay-ops-{kind}).
	 * @param array|null                         $incident  The open incident behind it.
	 * @param int[]                              $dismissed This user's dismissed incident ids.
	 * @return void
	 */
	private static function notice( array $words, $type, $kind, $incident, array $dismissed ) {
		$id = null === $incident ? 0 : absint( $incident['id'] );
		if ( $id && in_array( $id, $dismissed, true ) ) {
			return;
		}
		printf(
			'<div class="notice notice-%1$s formrelay-ops-notice formrelay-ops-%2$s" data-formrelay-incident="%3$s"><p><strong>%4$s</strong> %5$s <a href="%6$s">%7$s</a></p>',
			esc_attr( $type ),
			esc_attr( $kind ),
			esc_attr( (string) $id ),
			esc_html( $words['title'] ),
			esc_html( $words['text'] ),
			esc_url( admin_url( 'admin.php?page=' . FormRelay_Dashboard::PAGE ) ),
			esc_html__( 'Open FormRelay', 'formrelay-bridge' )
		);
		if ( $id ) {
			FormRelay_Notice_Dismiss::incident_form( $id );
		}
		echo '</div>';
	}

	/**
	 * Jobs failed since the user last looked: a link to the failed list, and its own dismiss.
	 *
	 * @param int  $count  Failed since then (capped).
	 * @param bool $looked Whether the user ever opened the FormRelay page.
	 * @return void
	 */
	private static function failed_notice( $count, $looked ) {
		$words = FormRelay_Notice_Text::failed( $count, $looked );
		printf(
			'<div class="notice notice-error formrelay-ops-notice formrelay-ops-failed"><p><strong>%1$s</strong> %2$s <a class="formrelay-failed-link" href="%3$s">%4$s</a></p>',
			esc_html( $words['title'] ),
			esc_html( $words['text'] ),
			esc_url( self::failed_list_url() ),
			esc_html__( 'See the failed jobs', 'formrelay-bridge' )
		);
		FormRelay_Notice_Dismiss::failed_form();
		echo '</div>';
	}

	/**
	 * The dashboard's jobs list filtered to failed jobs (the parameters its page reads).
	 *
	 * @return string
	 */
	public static function failed_list_url() {
		return add_query_arg(
			array(
				'page'   => FormRelay_Dashboard::PAGE,
				'view'   => 'jobs',
				'status' => 'failed',
			),
			admin_url( 'admin.php' )
		);
	}
}
