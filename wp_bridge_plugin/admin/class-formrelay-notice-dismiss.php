<?php
/**
 * Dismissing FormRelay's notices: admin-post.php actions with a nonce and a capability check.
 *
 * - `formrelay_dismiss_incident` (POST `incident`, nonce action
 *   `formrelay_dismiss_incident_{id}`): adds the incident id to the user's
 *   dismissed ids (user meta, the newest MAX_DISMISSED kept: ids only grow, so
 *   the oldest are incidents long resolved);
 * - `formrelay_dismiss_failed` (nonce action `formrelay_dismiss_failed`): counts
 *   as looking, so only jobs failing after now bring the notice back.
 *
 * Both answer 403 without the capability and refuse a missing or forged
 * nonce (check_admin_referer), then go back where the user was.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The dismiss forms and their handlers.
 */
final class FormRelay_Notice_Dismiss {

	const INCIDENT_ACTION = 'formrelay_dismiss_incident';
	const FAILED_ACTION   = 'formrelay_dismiss_failed';
	const MAX_DISMISSED   = 100;

	/**
	 * Hooks for logged-in users (admin-post.php).
	 *
	 * @return void
	 */
	public static function register() {
		add_action( 'admin_post_' . self::INCIDENT_ACTION, array( __CLASS__, 'dismiss_incident' ) );
		add_action( 'admin_post_' . self::FAILED_ACTION, array( __CLASS__, 'dismiss_failed' ) );
	}

	/**
	 * The nonce action of one incident's dismiss.
	 *
	 * @param int $id Incident id.
	 * @return string
	 */
	public static function nonce_action( $id ) {
		return self::INCIDENT_ACTION . '_' . absint( $id );
	}

	/**
	 * The Dismiss button of an incident's notice.
	 *
	 * @param int $id Incident id.
	 * @return void
	 */
	public static function incident_form( $id ) {
		self::form( self::INCIDENT_ACTION, self::nonce_action( $id ), absint( $id ) );
	}

	/**
	 * The Dismiss button of the failed-jobs notice.
	 *
	 * @return void
	 */
	public static function failed_form() {
		self::form( self::FAILED_ACTION, self::FAILED_ACTION, 0 );
	}

	/**
	 * A small POST form to admin-post.php (works without JavaScript).
	 *
	 * @param string $action      admin-post action.
	 * @param string $nonce       Nonce action.
	 * @param int    $incident_id Incident id, 0 for none.
	 * @return void
	 */
	private static function form( $action, $nonce, $incident_id ) {
		echo '<form method="post" class="formrelay-dismiss" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '"><p>';
		echo '<input type="hidden" name="action" value="' . esc_attr( $action ) . '" />';
		if ( $incident_id ) {
			echo '<input type="hidden" name="incident" value="' . esc_attr( (string) $incident_id ) . '" />';
		}
		wp_nonce_field( $nonce );
		echo '<button type="submit" class="button button-small formrelay-dismiss-button">' . esc_html__( 'Dismiss', 'formrelay-bridge' ) . '</button>';
		echo '</p></form>';
	}

	/**
	 * POST admin-post.php?action=formrelay_dismiss_incident.
	 *
	 * @return void
	 */
	public static function dismiss_incident() {
		self::require_capability();
		$id = isset( $_POST['incident'] ) ? absint( wp_unslash( $_POST['incident'] ) ) : 0; // phpcs:ignore WordPress.Security.NonceVerification.Missing -- verified next, with the id in the nonce action.
		check_admin_referer( self::nonce_action( $id ) );
		if ( $id > 0 ) {
			$user      = get_current_user_id();
			$dismissed = array_map( 'absint', (array) get_user_meta( $user, FormRelay_Notices::DISMISSED_KEY, true ) );
			$dismissed = array_values( array_unique( array_filter( array_merge( $dismissed, array( $id ) ) ) ) );
			sort( $dismissed );
			update_user_meta( $user, FormRelay_Notices::DISMISSED_KEY, array_slice( $dismissed, -self::MAX_DISMISSED ) );
		}
		self::back();
	}

	/**
	 * POST admin-post.php?action=formrelay_dismiss_failed.
	 *
	 * @return void
	 */
	public static function dismiss_failed() {
		self::require_capability();
		check_admin_referer( self::FAILED_ACTION );
		FormRelay_Notices::mark_looked();
		self::back();
	}

	/**
	 * 403 for anyone without the dashboard's capability.
	 *
	 * @return void
	 */
	private static function require_capability() {
		if ( ! current_user_can( FormRelay_Dashboard::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to do that.', 'formrelay-bridge' ), '', array( 'response' => 403 ) );
		}
	}

	/**
	 * Back to the screen the notice was on.
	 *
	 * @return void
	 */
	private static function back() {
		$to = wp_get_referer();
		wp_safe_redirect( $to ? $to : admin_url() );
		exit;
	}
}
